package tlsconfig

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/domination/domination/internal/testenv"
)

// writeCA writes a self-signed CA certificate and its key as PEM files into
// dir and returns their paths and the parsed certificate.
func writeCA(t *testing.T, dir string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "domination test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return testenv.SelfSigned(t, dir, "ca.pem", "ca-key.pem", tmpl)
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestOnIsTrueWhenEnabledOrAnyFileIsSet(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want bool
	}{
		{"zero value", Config{}, false},
		{"server name alone", Config{ServerName: "kafka"}, false},
		{"insecure alone", Config{InsecureSkipVerify: true}, false},
		{"enabled", Config{Enabled: true}, true},
		{"ca file", Config{CAFile: "ca.pem"}, true},
		{"cert file", Config{CertFile: "c.pem"}, true},
		{"key file", Config{KeyFile: "k.pem"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.On(); got != tt.want {
				t.Fatalf("On() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestValidateRejectsAHalfKeyPairAndMissingFiles(t *testing.T) {
	dir := t.TempDir()
	ca, key, _ := writeCA(t, dir)
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // empty: valid
	}{
		{"zero value", Config{}, ""},
		{"existing ca", Config{CAFile: ca}, ""},
		{"existing pair", Config{CertFile: ca, KeyFile: key}, ""},
		{"cert without key", Config{CertFile: ca}, "needs both a cert file and a key file"},
		{"key without cert", Config{KeyFile: key}, "needs both a cert file and a key file"},
		{"missing ca", Config{CAFile: missing}, missing},
		{"missing cert", Config{CertFile: missing, KeyFile: key}, missing},
		{"missing key", Config{CertFile: ca, KeyFile: missing}, missing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testenv.CheckErr(t, "Validate()", tt.cfg.Validate(), tt.wantErr)
		})
	}
}

func TestBuildReturnsNilWhenOff(t *testing.T) {
	got, err := Config{ServerName: "kafka", InsecureSkipVerify: true}.Build()
	if err != nil || got != nil {
		t.Fatalf("Build() = %v, %v; want nil, nil", got, err)
	}
}

func TestBuildWithACAFileTrustsThatCA(t *testing.T) {
	ca, _, cert := writeCA(t, t.TempDir())
	got, err := Config{CAFile: ca, ServerName: "kafka.example"}.Build()
	if err != nil {
		t.Fatal(err)
	}
	if got.RootCAs == nil {
		t.Fatal("RootCAs is nil, want a pool with the CA")
	}
	want := x509.NewCertPool()
	want.AddCert(cert)
	if !got.RootCAs.Equal(want) {
		t.Fatal("RootCAs does not hold exactly the CA from the file")
	}
	if got.ServerName != "kafka.example" {
		t.Fatalf("ServerName = %q, want kafka.example", got.ServerName)
	}
	if got.InsecureSkipVerify {
		t.Fatal("InsecureSkipVerify is on though not asked for")
	}
	if len(got.Certificates) != 0 {
		t.Fatalf("%d client certificates, want none", len(got.Certificates))
	}
}

func TestBuildRejectsACAFileWithoutPEMNamingTheFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "not-a-ca.pem")
	writeFile(t, f, []byte("this is not PEM\n"))
	_, err := Config{CAFile: f}.Build()
	if err == nil {
		t.Fatal("Build() = nil error, want one for a file without PEM")
	}
	if !strings.Contains(err.Error(), f) || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("Build() = %v, want an error naming %s and saying it holds no PEM certificate", err, f)
	}
}

func TestBuildLoadsAClientCertificateAndKey(t *testing.T) {
	certFile, keyFile, cert := writeCA(t, t.TempDir())
	got, err := Config{CertFile: certFile, KeyFile: keyFile}.Build()
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Certificates) != 1 {
		t.Fatalf("%d client certificates, want 1", len(got.Certificates))
	}
	if leaf := got.Certificates[0].Leaf; leaf == nil || !leaf.Equal(cert) {
		t.Fatal("the loaded client certificate is not the one in the cert file")
	}
	if got.RootCAs != nil {
		t.Fatal("RootCAs set without a CA file, want the system pool (nil)")
	}
}

func TestBuildRejectsACertWhoseKeyDoesNotMatch(t *testing.T) {
	dir := t.TempDir()
	certFile, _, _ := writeCA(t, dir)
	other := t.TempDir()
	_, otherKey, _ := writeCA(t, other)
	_, err := Config{CertFile: certFile, KeyFile: otherKey}.Build()
	if err == nil || !strings.Contains(err.Error(), "load tls client certificate") {
		t.Fatalf("Build() = %v, want a load tls client certificate error", err)
	}
}
