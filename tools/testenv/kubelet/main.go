// Command kubelet is the test environment's process kubelet: it registers a Node,
// runs each Pod bound to it whose image it knows (Gantry's, the Gateway API conformance
// echo server; images.go) as a local process in the Pod's own network namespace, and
// reports status through the real API. It stands in for a container runtime and a real
// kubelet, which the test machines do not have.
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
)

const version = "v1.36.3-gantry-process-kubelet"

type kubelet struct {
	cs           kubernetes.Interface
	nodeName     string
	nodeIP       string
	bridge       string
	podCIDR      string
	stateDir     string
	gantryBin    string
	echoBasicBin string // runs echo-basic:* images; empty: they are not runnable
	// clusterDNS (--cluster-dns) and clusterDomain make the Pods' resolv.conf (dns.go)
	clusterDNS    []string
	clusterDomain string
	caFile        string
	apiHost       string
	apiPort       string
	ipBin         string
	cpu, mem      string
	maxPods       string
	startTime     metav1.Time
	ctx           context.Context
	ipam          *ipam
	mu            sync.Mutex
	pods          map[types.UID]*podRun
	readySince    metav1.Time
	recorder      record.EventRecorder
}

func main() {
	k := &kubelet{pods: map[types.UID]*podRun{}}
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig with the node's credentials")
	flag.StringVar(&k.nodeName, "node-name", "gantry-node", "Node name")
	flag.StringVar(&k.nodeIP, "node-ip", "10.244.0.1", "the Node's InternalIP (the bridge address); serves :10250 there")
	flag.StringVar(&k.bridge, "bridge", "gantry0", "host bridge that Pod veths join")
	flag.StringVar(&k.podCIDR, "pod-cidr", "10.244.0.0/24", "Pod address range; the node IP is its gateway")
	flag.StringVar(&k.stateDir, "state-dir", "", "folder for Pod files and logs")
	flag.StringVar(&k.gantryBin, "gantry-bin", os.Getenv("GANTRY_BIN"), "program run for gantry:* images")
	flag.StringVar(&k.echoBasicBin, "echo-basic-bin", "", "program run for echo-basic:* images (the Gateway API conformance echo server)")
	flag.StringVar(&k.caFile, "ca-file", "", "cluster CA (ca.crt in Pods; verifies log clients)")
	flag.StringVar(&k.apiHost, "apiserver-host", "10.244.0.1", "KUBERNETES_SERVICE_HOST given to Pods")
	flag.StringVar(&k.apiPort, "apiserver-port", "6443", "KUBERNETES_SERVICE_PORT given to Pods")
	flag.StringVar(&k.cpu, "cpu", "16", "nominal cpu capacity")
	flag.StringVar(&k.mem, "memory", "32Gi", "nominal memory capacity")
	flag.StringVar(&k.maxPods, "max-pods", "110", "pod capacity")
	clusterDNS := flag.String("cluster-dns", "", "comma-separated IPs of the cluster DNS server, the nameserver of ClusterFirst Pods (empty: Pods use the host's resolv.conf)")
	flag.StringVar(&k.clusterDomain, "cluster-domain", "cluster.local", "the cluster's DNS domain, searched by ClusterFirst Pods")
	tlsCert := flag.String("tls-cert-file", "", "serving certificate for :10250")
	tlsKey := flag.String("tls-private-key-file", "", "serving key for :10250")
	port := flag.Int("port", 10250, "kubelet API port")
	flag.Parse()
	if *kubeconfig == "" || k.stateDir == "" || k.caFile == "" || *tlsCert == "" || *tlsKey == "" {
		log.Fatal("--kubeconfig, --state-dir, --ca-file, --tls-cert-file and --tls-private-key-file are required")
	}
	if k.gantryBin == "" {
		log.Fatal("--gantry-bin (or GANTRY_BIN) is required")
	}
	for _, ip := range strings.Split(*clusterDNS, ",") {
		if ip = strings.TrimSpace(ip); ip == "" {
			continue
		}
		if net.ParseIP(ip) == nil {
			log.Fatalf("--cluster-dns: %q is not an IP address", ip)
		}
		k.clusterDNS = append(k.clusterDNS, ip)
	}
	var err error
	if k.ipBin, err = exec.LookPath("ip"); err != nil {
		log.Fatal("iproute2's ip is required: ", err)
	}
	if k.ipam, err = newIPAM(k.podCIDR, k.nodeIP); err != nil {
		log.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatal(err)
	}
	cfg.UserAgent = "gantry-process-kubelet/" + version
	k.cs = kubernetes.NewForConfigOrDie(cfg)
	k.startTime = metav1.Now()
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: k.cs.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	k.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: k.nodeName})

	ctx, cancel := context.WithCancel(context.Background())
	k.ctx = ctx
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	// Leftovers of an earlier run (its processes are gone): remove their networks.
	k.cleanStale()

	if err := k.registerNode(ctx); err != nil {
		log.Fatal("registering the node: ", err)
	}
	go k.heartbeat(ctx)
	go func() {
		if err := k.serve(*port, *tlsCert, *tlsKey); err != nil {
			log.Fatal("kubelet API: ", err)
		}
	}()

	factory := informers.NewSharedInformerFactoryWithOptions(k.cs, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", k.nodeName).String()
		}))
	inf := factory.Core().V1().Pods().Informer()
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o interface{}) { k.podChanged(o.(*corev1.Pod)) },
		UpdateFunc: func(_, o interface{}) { k.podChanged(o.(*corev1.Pod)) },
		DeleteFunc: func(o interface{}) {
			if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			if p, ok := o.(*corev1.Pod); ok {
				k.podGone(p)
			}
		},
	})
	factory.Start(ctx.Done())
	log.Printf("process kubelet %s: node %s at %s, gantry binary %s, echo-basic binary %q, cluster DNS %v (domain %s)",
		version, k.nodeName, k.nodeIP, k.gantryBin, k.echoBasicBin, k.clusterDNS, k.clusterDomain)

	<-sigs
	log.Printf("stopping: terminating all pods")
	k.mu.Lock()
	runs := make([]*podRun, 0, len(k.pods))
	for _, r := range k.pods {
		runs = append(runs, r)
	}
	k.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Add(1)
		go func(r *podRun) { defer wg.Done(); r.shutdown() }(r)
	}
	wg.Wait()
	cancel()
}

func (k *kubelet) podChanged(p *corev1.Pod) {
	k.mu.Lock()
	r, ok := k.pods[p.UID]
	if !ok {
		if p.DeletionTimestamp != nil {
			// Not running here (e.g. from before a kubelet restart): nothing to stop.
			k.mu.Unlock()
			go k.deletePodObject(p)
			return
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			k.mu.Unlock()
			return
		}
		r = newPodRun(k, p)
		k.pods[p.UID] = r
		k.mu.Unlock()
		go r.run()
		return
	}
	k.mu.Unlock()
	r.update(p)
}

func (k *kubelet) podGone(p *corev1.Pod) {
	k.mu.Lock()
	r, ok := k.pods[p.UID]
	k.mu.Unlock()
	if ok {
		r.gone()
	}
}

func (k *kubelet) forget(uid types.UID) {
	k.mu.Lock()
	delete(k.pods, uid)
	k.mu.Unlock()
}

func (k *kubelet) findPod(ns, name string) *podRun {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, r := range k.pods {
		if r.namespace == ns && r.name == name {
			return r
		}
	}
	return nil
}

func (k *kubelet) deletePodObject(p *corev1.Pod) {
	zero := int64(0)
	uid := p.UID
	err := k.cs.CoreV1().Pods(p.Namespace).Delete(k.ctx, p.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		log.Printf("deleting pod %s/%s: %v", p.Namespace, p.Name, err)
	}
}

func (k *kubelet) registerNode(ctx context.Context) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: k.nodeName,
			Labels: map[string]string{
				"kubernetes.io/hostname": k.nodeName,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     runtime.GOARCH,
				"beta.kubernetes.io/os":  "linux",
			},
		},
	}
	_, err := k.cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	k.readySince = metav1.Now()
	return k.updateNodeStatus(ctx)
}

func (k *kubelet) updateNodeStatus(ctx context.Context) error {
	node, err := k.cs.CoreV1().Nodes().Get(ctx, k.nodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	now := metav1.Now()
	res := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse(k.cpu),
		corev1.ResourceMemory:           resource.MustParse(k.mem),
		corev1.ResourcePods:             resource.MustParse(k.maxPods),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg,
			LastHeartbeatTime: now, LastTransitionTime: k.readySince}
	}
	var uname syscall.Utsname
	_ = syscall.Uname(&uname)
	node.Status = corev1.NodeStatus{
		Capacity:    res,
		Allocatable: res,
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "nominal capacity"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "nominal capacity"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "nominal capacity"),
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "process kubelet is posting ready status"),
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: k.nodeIP},
			{Type: corev1.NodeHostName, Address: k.nodeName},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
		NodeInfo: corev1.NodeSystemInfo{
			KernelVersion:           utsString(uname.Release[:]),
			OSImage:                 "gantry testenv (processes, no container runtime)",
			ContainerRuntimeVersion: "process://" + version,
			KubeletVersion:          version,
			OperatingSystem:         "linux",
			Architecture:            runtime.GOARCH,
		},
	}
	_, err = k.cs.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
	return err
}

func utsString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}

// heartbeat renews the node Lease and posts node status.
func (k *kubelet) heartbeat(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		if err := k.renewLease(ctx); err != nil {
			log.Printf("renewing node lease: %v", err)
		}
		if err := k.updateNodeStatus(ctx); err != nil {
			log.Printf("posting node status: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (k *kubelet) renewLease(ctx context.Context) error {
	leases := k.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	dur := int32(40)
	l, err := leases.Get(ctx, k.nodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node, nerr := k.cs.CoreV1().Nodes().Get(ctx, k.nodeName, metav1.GetOptions{})
		if nerr != nil {
			return nerr
		}
		holder := k.nodeName
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: k.nodeName, Namespace: corev1.NamespaceNodeLease,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &dur, RenewTime: &now},
		}
		_, err = leases.Create(ctx, l, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.RenewTime = &now
	l.Spec.LeaseDurationSeconds = &dur
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}

// cleanStale removes pod networks and folders left by an earlier run.
func (k *kubelet) cleanStale() {
	dirs, _ := filepath.Glob(filepath.Join(k.stateDir, "pods", "*"))
	for _, d := range dirs {
		if b, err := os.ReadFile(filepath.Join(d, "netns")); err == nil {
			deleteNetns(k.ipBin, string(b))
		}
		_ = os.RemoveAll(d)
	}
}
