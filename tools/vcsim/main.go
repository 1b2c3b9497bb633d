// Command vcsim serves govmomi's vCenter simulator (the VPX model) over TLS
// on loopback, for opsconsole's tests and `make run`.
//
// Debian ships the govmomi simulator library but not its vcsim command, so
// this is our own small front end. It is built by tools/vcsim/build.sh
// against a patched copy of the library (tools/vcsim/patches).
//
// Contract with opsconsole/localservices/vcsim.py: once the server listens,
// exactly one JSON line is printed on stdout (url, host, credentials, CA file
// and the inventory names), then the process serves until SIGTERM/SIGINT,
// when it shuts down and removes its temporary datastore directories.
package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// delayFlag collects repeatable -delay METHOD=ms options.
type delayFlag map[string]int

func (d delayFlag) String() string { return fmt.Sprint(map[string]int(d)) }

func (d delayFlag) Set(v string) error {
	parts := strings.SplitN(v, "=", 2)
	if len(parts) != 2 || parts[0] == "" {
		return fmt.Errorf("want METHOD=ms, got %q", v)
	}
	ms, err := strconv.Atoi(parts[1])
	if err != nil || ms < 0 {
		return fmt.Errorf("want a number of milliseconds >= 0, got %q", parts[1])
	}
	d[parts[0]] = ms
	return nil
}

// ready is the one JSON line printed on stdout once the server listens.
type ready struct {
	URL       string              `json:"url"`
	Host      string              `json:"host"`
	Username  string              `json:"username"`
	Password  string              `json:"password"`
	CertFile  string              `json:"cert_file"`
	Inventory map[string][]string `json:"inventory"`
}

func main() {
	log.SetPrefix("vcsim: ")
	// The simulator logs to the standard logger; keep stdout for the JSON line.
	log.SetOutput(os.Stderr)

	datacenters := flag.Int("datacenters", 1, "number of datacenters")
	clusters := flag.Int("clusters", 1, "number of clusters per datacenter")
	hosts := flag.Int("hosts", 3, "number of hosts per cluster")
	standalone := flag.Int("standalone-hosts", 0, "number of standalone hosts per datacenter")
	datastores := flag.Int("datastores", 1, "number of local datastores (mounted on every host)")
	portgroups := flag.Int("portgroups", 1, "number of distributed portgroups per datacenter")
	vms := flag.Int("vms", 2, "number of VMs per cluster (powered on)")
	listen := flag.String("listen", "127.0.0.1:0", "loopback address to listen on (port 0 picks a free port)")
	certFile := flag.String("cert", "", "PEM certificate to serve (default: a fresh self-signed one)")
	keyFile := flag.String("key", "", "PEM private key for -cert")
	certOut := flag.String("cert-out", "", "where to write the generated certificate (default: a temporary file)")
	username := flag.String("username", "admin", "the only username accepted by Login")
	password := flag.String("password", "vcsim-password", "the only password accepted by Login")
	delayAll := flag.Int("delay-all", 0, "latency in ms added to every SOAP call")
	watchStdin := flag.Bool("exit-on-stdin-eof", false, "shut down when stdin closes (so vcsim dies with the process that started it)")
	delays := delayFlag{}
	flag.Var(delays, "delay", "METHOD=ms latency for one SOAP method, e.g. CloneVM_Task=500 (repeatable)")
	flag.Parse()

	if err := checkLoopback(*listen); err != nil {
		log.Fatal(err)
	}
	if (*certFile == "") != (*keyFile == "") {
		log.Fatal("-cert and -key go together")
	}
	if *username == "" || *password == "" {
		log.Fatal("-username and -password must not be empty")
	}

	var cert tls.Certificate
	var err error
	servedCert := *certFile
	removeCert := false
	if *certFile != "" {
		cert, err = tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			log.Fatalf("loading -cert/-key: %s", err)
		}
	} else {
		var certPEM []byte
		cert, certPEM, err = selfSignedCert()
		if err != nil {
			log.Fatalf("generating a certificate: %s", err)
		}
		servedCert = *certOut
		if servedCert == "" {
			f, err := ioutil.TempFile("", "vcsim-cert-*.pem")
			if err != nil {
				log.Fatal(err)
			}
			_ = f.Close()
			servedCert = f.Name()
			removeCert = true
		}
		if err := ioutil.WriteFile(servedCert, certPEM, 0o644); err != nil {
			log.Fatalf("writing %s: %s", servedCert, err)
		}
	}

	model := simulator.VPX()
	model.Datacenter = *datacenters
	model.Cluster = *clusters
	model.ClusterHost = *hosts
	model.Host = *standalone
	model.Datastore = *datastores
	model.Portgroup = *portgroups
	model.Machine = *vms
	// Delays apply only once Create() has built the inventory.
	model.DelayConfig = simulator.DelayConfig{Delay: *delayAll, MethodDelay: delays}

	if err := model.Create(); err != nil {
		log.Fatalf("creating the model: %s", err)
	}
	defer model.Remove()

	model.Service.Listen = &url.URL{
		Host: *listen,
		// Anything but simulator.DefaultLogin makes Login check these exactly.
		User: url.UserPassword(*username, *password),
	}
	model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	model.Service.RegisterEndpoints = true

	server := model.Service.NewServer()

	host := server.URL.Host
	out := ready{
		URL:       (&url.URL{Scheme: "https", Host: host, Path: "/sdk"}).String(),
		Host:      host,
		Username:  *username,
		Password:  *password,
		CertFile:  servedCert,
		Inventory: inventory(),
	}
	line, err := json.Marshal(out)
	if err != nil {
		log.Fatal(err)
	}
	os.Stdout.Write(append(line, '\n'))
	_ = os.Stdout.Sync()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	if *watchStdin {
		// A launcher that dies without stopping us (SIGKILL, crash) closes
		// our stdin: leave then too, rather than linger with the datastores.
		go func() {
			_, _ = io.Copy(ioutil.Discard, os.Stdin)
			sig <- syscall.SIGHUP
		}()
	}
	s := <-sig
	log.Printf("%s: shutting down", s)

	// Close waits for calls in flight; bound it so a stuck client cannot keep
	// the datastore directories around.
	done := make(chan struct{})
	go func() { server.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		log.Printf("server did not close within 5s; exiting anyway")
	}
	model.Remove()
	if removeCert {
		_ = os.Remove(servedCert)
	}
}

// checkLoopback refuses any listen address that is not a loopback IP: this
// simulator accepts any client and must never be reachable from elsewhere.
func checkLoopback(addr string) error {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-listen %q: %s", addr, err)
	}
	if h == "localhost" {
		return nil
	}
	ip := net.ParseIP(h)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-listen %q: only loopback addresses are allowed", addr)
	}
	return nil
}

// selfSignedCert makes a 2048-bit RSA certificate for 127.0.0.1/localhost
// that is its own CA, so clients can verify it with the PEM as their CA file.
// (Go's built-in test certificate is 1024-bit, which OpenSSL 3 refuses.)
func selfSignedCert() (tls.Certificate, []byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pub := x509.MarshalPKCS1PublicKey(&key.PublicKey)
	keyID := sha1.Sum(pub)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "vcsim 127.0.0.1", Organization: []string{"opsconsole vcsim"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		// CA:TRUE so that this one PEM file works as the trust anchor.
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		// Both key ids, as strict verifiers (Python 3.13's default) want an
		// authority key id even on a self-signed certificate.
		SubjectKeyId:   keyID[:],
		AuthorityKeyId: keyID[:],
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	return cert, certPEM, err
}

// inventory lists the names the model created, sorted, so callers need not
// know the simulator's naming scheme (DC0, DC0_C0, LocalDS_0, DC0_DVPG0, ...).
func inventory() map[string][]string {
	names := func(kind string, keep func(mo.Entity) bool) []string {
		list := []string{}
		for _, e := range simulator.Map.All(kind) {
			if keep == nil || keep(e) {
				list = append(list, e.Entity().Name)
			}
		}
		sort.Strings(list)
		return list
	}
	isTemplate := func(e mo.Entity) bool {
		vm := e.(*simulator.VirtualMachine)
		return vm.Config != nil && vm.Config.Template
	}
	inCluster := func(e mo.Entity) bool {
		h := e.(*simulator.HostSystem)
		return h.Parent != nil && h.Parent.Type == "ClusterComputeResource"
	}
	// Uplink portgroups are part of the DVS, not networks to put VMs on.
	isUplink := func(e mo.Entity) bool {
		pg := e.(*simulator.DistributedVirtualPortgroup)
		return (pg.Config.Uplink != nil && *pg.Config.Uplink) || strings.Contains(pg.Name, "-DVUplinks")
	}
	return map[string][]string{
		"datacenters":         names("Datacenter", nil),
		"clusters":            names("ClusterComputeResource", nil),
		"hosts":               names("HostSystem", inCluster),
		"standalone_hosts":    names("HostSystem", func(e mo.Entity) bool { return !inCluster(e) }),
		"resource_pools":      poolPaths(),
		"datastores":          names("Datastore", nil),
		"portgroups":          names("DistributedVirtualPortgroup", func(e mo.Entity) bool { return !isUplink(e) }),
		"uplink_portgroups":   names("DistributedVirtualPortgroup", isUplink),
		"standard_portgroups": names("Network", nil),
		"dvswitches":          append(names("VmwareDistributedVirtualSwitch", nil), names("DistributedVirtualSwitch", nil)...),
		"vms":                 names("VirtualMachine", func(e mo.Entity) bool { return !isTemplate(e) }),
		"templates":           names("VirtualMachine", isTemplate),
	}
}

// poolPaths names resource pools by path from their cluster or host,
// "DC0_C0/Resources", because every root pool is called "Resources".
func poolPaths() []string {
	list := []string{}
	var walk func(prefix string, ref types.ManagedObjectReference)
	walk = func(prefix string, ref types.ManagedObjectReference) {
		pool, ok := simulator.Map.Get(ref).(*simulator.ResourcePool)
		if !ok {
			return
		}
		name := prefix + "/" + pool.Name
		list = append(list, name)
		for _, child := range pool.ResourcePool.ResourcePool {
			walk(name, child)
		}
	}
	for _, kind := range []string{"ClusterComputeResource", "ComputeResource"} {
		for _, e := range simulator.Map.All(kind) {
			var root *types.ManagedObjectReference
			switch cr := e.(type) {
			case *simulator.ClusterComputeResource:
				root = cr.ResourcePool
			case *mo.ComputeResource:
				root = cr.ResourcePool
			}
			if root != nil {
				walk(e.Entity().Name, *root)
			}
		}
	}
	sort.Strings(list)
	return list
}
