package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestCAInstallHelp_GivesTheExactCommandsForEveryOSAndRuntime(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "ca.pem")
	out, errb := newBuf(), newBuf()
	if code := run(context.Background(), []string{"ca", "install-help", "--cert", cert, "--proxy", "shipserver:3128"}, strings.NewReader(""), out, errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{
		`certutil -addstore -f Root "` + cert + `"`,
		`netsh winhttp set proxy proxy-server="shipserver:3128"`,
		`netsh winhttp reset proxy`,
		`proxyaddress="http://shipserver:3128"`, // .NET Framework app.config
		`keytool -importcert -cacerts -alias upsproxy -file "` + cert + `"`,
		`-Dhttps.proxyHost=shipserver -Dhttps.proxyPort=3128`,
		`security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain "` + cert + `"`,
		`/usr/local/share/ca-certificates/upsproxy.crt && sudo update-ca-certificates`,
		`/etc/pki/ca-trust/source/anchors/upsproxy.pem && sudo update-ca-trust`,
		`REQUESTS_CA_BUNDLE=`,
		`NODE_EXTRA_CA_CERTS="` + cert + `"`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("install-help lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "{") && strings.Contains(out.String(), "{CERT}") {
		t.Error("a placeholder was left in the text")
	}
}

func TestCAInstallHelp_DefaultsToTheConfigsCertificate(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "upsproxy.hcl")
	writeFile(t, cfg, "mitm {\n  ca_cert = \"pki/ca.pem\"\n  ca_key = \"pki/ca-key.pem\"\n}\n")
	out, errb := newBuf(), newBuf()
	if code := run(context.Background(), []string{"ca", "install-help", "--config", cfg}, strings.NewReader(""), out, errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), `certutil -addstore -f Root "`+filepath.Join(dir, "pki", "ca.pem")+`"`) {
		t.Fatalf("the commands do not name the config's certificate:\n%s", out.String())
	}
}

func TestCAInstallHelp_RefusesAProxyWithoutAPort(t *testing.T) {
	errb := newBuf()
	if code := run(context.Background(), []string{"ca", "install-help", "--proxy", "shipserver"}, strings.NewReader(""), newBuf(), errb); code != 1 ||
		!strings.Contains(errb.String(), "host:port") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}

func TestCAInit_PrintsTheInstallHelpForTheNewCertificate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	out, errb := newBuf(), newBuf()
	if code := run(context.Background(), []string{"ca", "init", "--out", dir}, strings.NewReader(""), out, errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), `certutil -addstore -f Root "`+filepath.Join(dir, "ca.pem")+`"`) ||
		!strings.Contains(out.String(), "ca_key  = ") {
		t.Fatalf("ca init output:\n%s", out.String())
	}
}
