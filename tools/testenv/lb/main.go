// Command lb-allocator is the test cluster's load-balancer controller: it gives Services of
// type LoadBalancer an address from a local pool and writes it to their status, where
// kube-proxy picks it up and programs it as the Service's VIP. scripts/testenv routes the
// pool onto the Pod bridge, so the addresses answer on this machine only.
package main

import (
	"context"
	"flag"
	"log"
	"os/signal"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig with this program's credentials")
	poolCIDR := flag.String("pool", "10.245.0.0/24", "IPv4 range whose addresses are handed out")
	flag.Parse()
	if *kubeconfig == "" {
		log.Fatal("--kubeconfig is required")
	}
	p, err := newPool(*poolCIDR)
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	defer broadcaster.Shutdown()

	factory := informers.NewSharedInformerFactory(cs, 0)
	services := factory.Core().V1().Services()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	_, err = services.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	})
	if err != nil {
		log.Fatal(err)
	}
	a := &allocator{
		cs:       cs,
		services: services.Lister(),
		recorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "gantry-testenv-lb"}),
		pool:     p,
		requeue:  queue.Add,
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), services.Informer().HasSynced) {
		log.Fatal("the Service informer did not sync")
	}
	if err := a.restore(); err != nil {
		log.Fatal(err)
	}
	log.Printf("lb-allocator: pool %s", p)

	go func() {
		<-ctx.Done()
		queue.ShutDown()
	}()
	// One worker: the pool needs no lock, and Services are few.
	for {
		key, quit := queue.Get()
		if quit {
			break
		}
		if err := a.reconcile(ctx, key); err != nil {
			log.Printf("%s: %v (retrying)", key, err)
			queue.AddRateLimited(key)
		} else {
			queue.Forget(key)
		}
		queue.Done(key)
	}
	factory.Shutdown()
}
