// The pod sandbox ("pause") process for the real-node tests: no registry is reachable, so
// containerd's sandbox_image is built here from this file. It holds the pod's namespaces and
// does nothing until the kubelet stops the pod, then exits at once.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
