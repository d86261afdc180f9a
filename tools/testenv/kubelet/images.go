package main

import (
	"fmt"
	"path/filepath"
	"strings"
)

// The one place that says which container images the process kubelet can run and
// with which local program. An image matches by its repository's last path element,
// whatever the registry and tag: "gantry:dev", "ghcr.io/x/gantry:1.2" and
// "gantry@sha256:..." all run the freshly built Gantry binary.
//
// Adding an image is one line here (and a flag in main.go naming its binary).
type program struct {
	// repository name, the last path element of the image without tag or digest
	name string
	// how to find the program: the flag/env value that names the binary
	binary func(k *kubelet) string
}

var programs = []program{
	{name: "gantry", binary: func(k *kubelet) string { return k.gantryBin }},
	// The Gateway API conformance suite's echo server
	// (registry.k8s.io/gateway-api/conformance/echo-basic:v0.1.0 and :v0.2.0): one build of
	// the module sigs.k8s.io/gateway-api-conformance-images serves every tag.
	{name: "echo-basic", binary: func(k *kubelet) string { return k.echoBasicBin }},
}

// imageName returns the last path element of an image reference without tag/digest.
func imageName(image string) string {
	ref := image
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		ref = ref[i+1:]
	}
	if i := strings.Index(ref, ":"); i >= 0 {
		ref = ref[:i]
	}
	return ref
}

// resolveProgram maps an image to the local binary that stands in for it.
func (k *kubelet) resolveProgram(image string) (string, error) {
	name := imageName(image)
	for _, p := range programs {
		if p.name == name {
			if bin := p.binary(k); bin != "" {
				return bin, nil
			}
			return "", fmt.Errorf("image %q is not runnable here: the process kubelet was started without a program for %s:* images", image, name)
		}
	}
	known := make([]string, 0, len(programs))
	for _, p := range programs {
		known = append(known, p.name+":*")
	}
	return "", fmt.Errorf("image %q is not runnable here: the process kubelet only runs %s images",
		image, strings.Join(known, ", "))
}

// commandLine turns a container's command/args into the program's argv, as a
// container runtime would with the image's entrypoint being the program itself.
// A command naming the program (e.g. "gantry" or "/usr/local/bin/gantry") is the
// entrypoint; any other command is not runnable.
func commandLine(bin, image string, command, args []string) ([]string, error) {
	if len(command) == 0 {
		return append([]string{bin}, args...), nil
	}
	if filepath.Base(command[0]) != imageName(image) {
		return nil, fmt.Errorf("command %q is not runnable here: in image %q only %q is", command[0], image, imageName(image))
	}
	argv := append([]string{bin}, command[1:]...)
	return append(argv, args...), nil
}
