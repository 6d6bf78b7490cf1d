// Command cert-manager-controller runs cert-manager's own controllers for the kibertas-async sandbox.
//
// Since v1.12 cert-manager's cmd/controller is a nested module (controller-binary) with a relative
// replace, which the Go module proxy cannot serve, and its flag parsing lives in internal packages
// another module may not import. The controllers themselves are public packages of the main module:
// this main builds their ContextFactory the way cmd/controller/app/controller.go does, and runs every
// controller that registered itself in controller.Known() through the blank imports below.
//
// Deliberately left out (the sandbox needs none of it): leader election (one controller per cluster),
// the config file, the healthz and pprof servers, ACME, Vault, Venafi, the ingress and gateway shims
// and the CertificateSigningRequest controllers. Run:
//
//	cert-manager-controller --kubeconfig=KUBECONFIG --cluster-resource-namespace=cert-manager \
//	    --metrics-listen-address=127.0.0.1:PORT
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/klog/v2"

	"github.com/cert-manager/cert-manager/pkg/controller"
	logf "github.com/cert-manager/cert-manager/pkg/logs"

	// Each package registers its controller in controller.Known() (and the issuer packages their
	// issuer type, which the issuers and clusterissuers controllers set up and mark Ready).
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

func main() {
	klog.InitFlags(nil) // -v=N for more of cert-manager's own logging
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster to run against")
	clusterResourceNamespace := flag.String("cluster-resource-namespace", "cert-manager",
		"where the Secrets of ClusterIssuers live")
	metricsAddress := flag.String("metrics-listen-address", "",
		"host:port for cert-manager's Prometheus metrics; none when empty")
	workers := flag.Int("concurrent-workers", 5, "workers per controller (cert-manager's default)")
	flag.Parse()

	logf.InitLogs()
	defer logf.FlushLogs()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx = logf.NewContext(ctx, logf.Log, "controller")
	if err := run(ctx, *kubeconfig, *clusterResourceNamespace, *metricsAddress, *workers); err != nil {
		logf.Log.Error(err, "cert-manager controller failed")
		logf.FlushLogs()
		os.Exit(1)
	}
}

func run(rootCtx context.Context, kubeconfig, clusterResourceNamespace, metricsAddress string, workers int) error {
	log := logf.FromContext(rootCtx)
	group, rootCtx := errgroup.WithContext(rootCtx)

	factory, err := controller.NewContextFactory(rootCtx, controller.ContextOptions{
		Kubeconfig:         kubeconfig,
		KubernetesAPIQPS:   20, // cert-manager's defaults (internal/apis/config/controller/v1alpha1)
		KubernetesAPIBurst: 50,
		IssuerOptions:      controller.IssuerOptions{ClusterResourceNamespace: clusterResourceNamespace},
		CertificateOptions: controller.CertificateOptions{
			// Zero would retry a failed request at once, forever: keep cert-manager's real back-off.
			CertificateRequestMinimumBackoffDuration: time.Hour,
			CertificateRequestMaximumBackoffDuration: 32 * time.Hour,
		},
		SchedulerOptions: controller.SchedulerOptions{MaxConcurrentChallenges: 60},
	})
	if err != nil {
		return err
	}
	base, err := factory.Build()
	if err != nil {
		return err
	}

	if metricsAddress != "" {
		listener, err := (&net.ListenConfig{}).Listen(rootCtx, "tcp", metricsAddress)
		if err != nil {
			return fmt.Errorf("cannot listen for metrics on %s: %w", metricsAddress, err)
		}
		base.Metrics.SetupCertificateCollector(base.SharedInformerFactory.Certmanager().V1().Certificates().Lister())
		base.Metrics.SetupIssuerCollector(base.SharedInformerFactory.Certmanager().V1().Issuers().Lister())
		base.Metrics.SetupClusterIssuerCollector(base.SharedInformerFactory.Certmanager().V1().ClusterIssuers().Lister())
		server := base.Metrics.NewServer(listener)
		group.Go(func() error {
			if err := server.Serve(listener); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		group.Go(func() error {
			<-rootCtx.Done()
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return server.Shutdown(shutdownCtx) //nolint:contextcheck // the root context is already done
		})
	}

	names := make([]string, 0, len(controller.Known()))
	for name := range controller.Known() {
		names = append(names, name)
	}
	sort.Strings(names)
	log.Info("starting cert-manager controllers", "controllers", names)
	for _, name := range names {
		// Constructors register their informers with the shared factories: all of them before Start.
		loop, err := controller.Known()[name](factory)
		if err != nil {
			return fmt.Errorf("cannot construct controller %s: %w", name, err)
		}
		group.Go(func() error { return loop.Run(workers, rootCtx) })
	}
	base.SharedInformerFactory.Start(rootCtx.Done())
	base.KubeSharedInformerFactory.Start(rootCtx.Done())
	base.HTTP01ResourceMetadataInformersFactory.Start(rootCtx.Done())

	err = group.Wait()
	base.HTTP01ResourceMetadataInformersFactory.Shutdown()
	base.KubeSharedInformerFactory.Shutdown()
	base.SharedInformerFactory.Shutdown()
	return err
}
