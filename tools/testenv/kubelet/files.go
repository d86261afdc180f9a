package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Volumes are written as files under the Pod's folder and bind-mounted at their
// mountPath inside the Pod's own mount namespace (see launcher in process.go).

// writeVolumes (re)writes every volume of the pod; returns volume name -> host dir.
func (r *podRun) writeVolumes(ctx context.Context, pod *corev1.Pod) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		dir := filepath.Join(r.dir, "volumes", v.Name)
		switch {
		case v.HostPath != nil:
			out[v.Name] = v.HostPath.Path
			continue
		case v.EmptyDir != nil:
			if err := os.MkdirAll(dir, 0o777); err != nil {
				return nil, err
			}
		case v.Secret != nil:
			data, err := r.secretData(ctx, pod.Namespace, v.Secret.SecretName, v.Secret.Optional)
			if err != nil {
				return nil, fmt.Errorf("volume %q: %w", v.Name, err)
			}
			if err := writeKeys(dir, data, v.Secret.Items, v.Secret.DefaultMode); err != nil {
				return nil, err
			}
		case v.ConfigMap != nil:
			data, err := r.configMapData(ctx, pod.Namespace, v.ConfigMap.Name, v.ConfigMap.Optional)
			if err != nil {
				return nil, fmt.Errorf("volume %q: %w", v.Name, err)
			}
			if err := writeKeys(dir, data, v.ConfigMap.Items, v.ConfigMap.DefaultMode); err != nil {
				return nil, err
			}
		case v.DownwardAPI != nil:
			if err := r.writeDownward(dir, pod, v.DownwardAPI.Items, v.DownwardAPI.DefaultMode); err != nil {
				return nil, fmt.Errorf("volume %q: %w", v.Name, err)
			}
		case v.Projected != nil:
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
			for _, s := range v.Projected.Sources {
				var err error
				switch {
				case s.ServiceAccountToken != nil:
					err = r.writeToken(ctx, pod, dir, s.ServiceAccountToken)
				case s.ConfigMap != nil:
					var data map[string][]byte
					if data, err = r.configMapData(ctx, pod.Namespace, s.ConfigMap.Name, s.ConfigMap.Optional); err == nil {
						err = writeKeys(dir, data, s.ConfigMap.Items, v.Projected.DefaultMode)
					}
				case s.Secret != nil:
					var data map[string][]byte
					if data, err = r.secretData(ctx, pod.Namespace, s.Secret.Name, s.Secret.Optional); err == nil {
						err = writeKeys(dir, data, s.Secret.Items, v.Projected.DefaultMode)
					}
				case s.DownwardAPI != nil:
					err = r.writeDownward(dir, pod, s.DownwardAPI.Items, v.Projected.DefaultMode)
				default:
					err = fmt.Errorf("this projected volume source is not supported by the process kubelet")
				}
				if err != nil {
					return nil, fmt.Errorf("volume %q: %w", v.Name, err)
				}
			}
		default:
			return nil, fmt.Errorf("volume %q: only secret, configMap, emptyDir, projected, downwardAPI and hostPath volumes are supported by the process kubelet", v.Name)
		}
		out[v.Name] = dir
	}
	return out, nil
}

func (r *podRun) secretData(ctx context.Context, ns, name string, optional *bool) (map[string][]byte, error) {
	s, err := r.k.cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) && optional != nil && *optional {
			return map[string][]byte{}, nil
		}
		return nil, fmt.Errorf("secret %q: %w", name, err)
	}
	return s.Data, nil
}

func (r *podRun) configMapData(ctx context.Context, ns, name string, optional *bool) (map[string][]byte, error) {
	c, err := r.k.cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) && optional != nil && *optional {
			return map[string][]byte{}, nil
		}
		return nil, fmt.Errorf("configmap %q: %w", name, err)
	}
	data := map[string][]byte{}
	for k, v := range c.Data {
		data[k] = []byte(v)
	}
	for k, v := range c.BinaryData {
		data[k] = v
	}
	return data, nil
}

func (r *podRun) writeToken(ctx context.Context, pod *corev1.Pod, dir string, p *corev1.ServiceAccountTokenProjection) error {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	exp := int64(3600)
	if p.ExpirationSeconds != nil {
		exp = *p.ExpirationSeconds
	}
	var aud []string
	if p.Audience != "" {
		aud = []string{p.Audience}
	}
	tr, err := r.k.cs.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences:         aud,
			ExpirationSeconds: &exp,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("token for service account %q: %w", sa, err)
	}
	return writeFile(filepath.Join(dir, p.Path), []byte(tr.Status.Token), 0o644)
}

func (r *podRun) writeDownward(dir string, pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, mode *int32) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, it := range items {
		if it.FieldRef == nil {
			return fmt.Errorf("downwardAPI %q: only fieldRef is supported", it.Path)
		}
		val, err := r.fieldValue(pod, it.FieldRef.FieldPath)
		if err != nil {
			return err
		}
		m := fileMode(it.Mode, mode)
		if err := writeFile(filepath.Join(dir, it.Path), []byte(val), m); err != nil {
			return err
		}
	}
	return nil
}

func fileMode(item, def *int32) os.FileMode {
	if item != nil {
		return os.FileMode(*item)
	}
	if def != nil {
		return os.FileMode(*def)
	}
	return 0o644
}

func writeKeys(dir string, data map[string][]byte, items []corev1.KeyToPath, mode *int32) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if len(items) == 0 {
		for k, v := range data {
			if err := writeFile(filepath.Join(dir, k), v, fileMode(nil, mode)); err != nil {
				return err
			}
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			return fmt.Errorf("key %q not found", it.Key)
		}
		if err := writeFile(filepath.Join(dir, it.Path), v, fileMode(it.Mode, mode)); err != nil {
			return err
		}
	}
	return nil
}

// writeFile replaces a file atomically, so that a running program never reads half of it.
func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// fieldValue resolves a downward-API field path.
func (r *podRun) fieldValue(pod *corev1.Pod, path string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return r.k.nodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return r.ip, nil
	case "status.hostIP", "status.hostIPs":
		return r.k.nodeIP, nil
	case "metadata.labels", "metadata.annotations":
		m := pod.Labels
		if path == "metadata.annotations" {
			m = pod.Annotations
		}
		var b strings.Builder
		for k, v := range m {
			fmt.Fprintf(&b, "%s=%q\n", k, v)
		}
		return b.String(), nil
	}
	for _, pre := range []string{"metadata.labels['", "metadata.annotations['"} {
		if strings.HasPrefix(path, pre) && strings.HasSuffix(path, "']") {
			key := strings.TrimSuffix(strings.TrimPrefix(path, pre), "']")
			if strings.HasPrefix(pre, "metadata.labels") {
				return pod.Labels[key], nil
			}
			return pod.Annotations[key], nil
		}
	}
	return "", fmt.Errorf("field path %q is not supported", path)
}

// containerEnv builds the environment of one container.
func (r *podRun) containerEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container) ([]string, error) {
	env := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := env[k]; !ok {
			order = append(order, k)
		}
		env[k] = v
	}
	set("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	set("HOSTNAME", pod.Name)
	{
		// The kubernetes Service's variables, which every Pod gets whatever its
		// enableServiceLinks; the host is the bridge address, where the API server listens.
		h, p := r.k.apiHost, r.k.apiPort
		set("KUBERNETES_SERVICE_HOST", h)
		set("KUBERNETES_SERVICE_PORT", p)
		set("KUBERNETES_SERVICE_PORT_HTTPS", p)
		set("KUBERNETES_PORT", "tcp://"+h+":"+p)
		set("KUBERNETES_PORT_"+p+"_TCP", "tcp://"+h+":"+p)
		set("KUBERNETES_PORT_"+p+"_TCP_PROTO", "tcp")
		set("KUBERNETES_PORT_"+p+"_TCP_PORT", p)
		set("KUBERNETES_PORT_"+p+"_TCP_ADDR", h)
	}
	for _, ef := range c.EnvFrom {
		var data map[string][]byte
		var err error
		switch {
		case ef.ConfigMapRef != nil:
			data, err = r.configMapData(ctx, pod.Namespace, ef.ConfigMapRef.Name, ef.ConfigMapRef.Optional)
		case ef.SecretRef != nil:
			data, err = r.secretData(ctx, pod.Namespace, ef.SecretRef.Name, ef.SecretRef.Optional)
		}
		if err != nil {
			return nil, err
		}
		for k, v := range data {
			set(ef.Prefix+k, string(v))
		}
	}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expand(e.Value, lookup))
			continue
		}
		vf := e.ValueFrom
		switch {
		case vf.FieldRef != nil:
			v, err := r.fieldValue(pod, vf.FieldRef.FieldPath)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			set(e.Name, v)
		case vf.SecretKeyRef != nil:
			data, err := r.secretData(ctx, pod.Namespace, vf.SecretKeyRef.Name, vf.SecretKeyRef.Optional)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			v, ok := data[vf.SecretKeyRef.Key]
			if !ok && (vf.SecretKeyRef.Optional == nil || !*vf.SecretKeyRef.Optional) {
				return nil, fmt.Errorf("env %s: key %q not in secret %q", e.Name, vf.SecretKeyRef.Key, vf.SecretKeyRef.Name)
			}
			if ok {
				set(e.Name, string(v))
			}
		case vf.ConfigMapKeyRef != nil:
			data, err := r.configMapData(ctx, pod.Namespace, vf.ConfigMapKeyRef.Name, vf.ConfigMapKeyRef.Optional)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			v, ok := data[vf.ConfigMapKeyRef.Key]
			if !ok && (vf.ConfigMapKeyRef.Optional == nil || !*vf.ConfigMapKeyRef.Optional) {
				return nil, fmt.Errorf("env %s: key %q not in configmap %q", e.Name, vf.ConfigMapKeyRef.Key, vf.ConfigMapKeyRef.Name)
			}
			if ok {
				set(e.Name, string(v))
			}
		case vf.ResourceFieldRef != nil:
			q, ok := c.Resources.Limits[corev1.ResourceName(strings.TrimPrefix(strings.TrimPrefix(vf.ResourceFieldRef.Resource, "limits."), "requests."))]
			if strings.HasPrefix(vf.ResourceFieldRef.Resource, "requests.") {
				q, ok = c.Resources.Requests[corev1.ResourceName(strings.TrimPrefix(vf.ResourceFieldRef.Resource, "requests."))]
			}
			if ok {
				set(e.Name, q.String())
			} else {
				set(e.Name, "0")
			}
		default:
			return nil, fmt.Errorf("env %s: unsupported valueFrom", e.Name)
		}
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+env[k])
	}
	return out, nil
}

// expand replaces $(VAR) with its value when VAR is defined; $$ escapes a dollar.
func expand(s string, lookup func(string) (string, bool)) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}
