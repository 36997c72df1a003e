package config

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/upsproxy/upsproxy/internal/ups"
)

func TestAnEmptyFileYieldsEveryDocumentedDefault(t *testing.T) {
	cfg, _, diags := LoadBytes([]byte(""), "/etc/upsproxy/upsproxy.hcl")
	if len(diags) > 0 {
		t.Fatalf("unexpected diagnostics:%s", describe(diags))
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", cfg.Listen, "127.0.0.1:8080"},
		{"admin_listen", cfg.AdminListen, "127.0.0.1:9090"},
		{"transaction_src", cfg.TransactionSrc, "upsproxy"},
		{"allow_cidrs", len(cfg.AllowCIDRs), 0},
		{"log level", cfg.Log.Level, "info"},
		{"log format", cfg.Log.Format, "json"},
		{"vault address left to VAULT_ADDR", cfg.Vault.Address, ""},
		{"vault mount", cfg.Vault.Mount, "secret"},
		{"vault prefix", cfg.Vault.Prefix, "upsproxy"},
		{"vault ca_cert", cfg.Vault.CACert, ""},
		{"vault auth method", cfg.Vault.Auth.Method, AuthToken},
		{"vault token auth reads VAULT_TOKEN", *cfg.Vault.Auth.Token, VaultTokenAuth{}},
		{"mitm off", cfg.MITM == nil, true},
		{"ups test_url", cfg.UPS.TestURL.String(), "https://wwwcie.ups.com"},
		{"ups production_url", cfg.UPS.ProductionURL.String(), "https://onlinetools.ups.com"},
		{"ups ca_file", cfg.UPS.CAFile, ""},
		{"ups warm_connections", cfg.UPS.WarmConnections, 2},
		{"ups http2", cfg.UPS.HTTP2, false},
		{"reminders warn_before", cfg.Reminders.WarnBefore, 168 * time.Hour},
		{"reminders interval", cfg.Reminders.Interval, 6 * time.Hour},
		{"max_request_body", cfg.Limits.MaxRequestBody, int64(10 << 20)},
		{"body_scan_limit", cfg.Limits.BodyScanLimit, int64(1 << 20)},
		{"max_connections", cfg.Limits.MaxConnections, 1024},
		{"read_header_timeout", cfg.Limits.ReadHeaderTimeout, 10 * time.Second},
		{"idle_timeout", cfg.Limits.IdleTimeout, 120 * time.Second},
		{"upstream_timeout", cfg.Limits.UpstreamTimeout, 60 * time.Second},
		{"shutdown_grace", cfg.Limits.ShutdownGrace, 30 * time.Second},
		{"tls_handshake_timeout", cfg.Limits.TLSHandshakeTimeout, 10 * time.Second},
		{"max_header_bytes", cfg.Limits.MaxHeaderBytes, 64 << 10},
		{"request_body_timeout", cfg.Limits.RequestBodyTimeout, 30 * time.Second},
		{"request_body_min_rate", cfg.Limits.RequestBodyMinRate, int64(1 << 10)},
		{"no rewrites", len(cfg.Rewrites), 0},
		{"no clients", len(cfg.Clients), 0},
		{"no carriers", len(cfg.Carriers), 0},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestEmptyBlocksAndOmittedCarrierAttributesTakeTheirDefaults(t *testing.T) {
	src := `
log {}
vault {
  auth "approle" {
    role_id        = "r"
    secret_id_file = "secret-id"
  }
}
reminders {}
limits {}
ups {}
carrier "main" {
  environment  = "test"
  client_id    = "id"
  redirect_uri = "https://127.0.0.1/upscallback"
}
`
	cfg, _, diags := LoadBytes([]byte(src), "/etc/upsproxy/upsproxy.hcl")
	if len(diags) > 0 {
		t.Fatalf("unexpected diagnostics:%s", describe(diags))
	}
	if cfg.Log != (Log{Level: "info", Format: "json"}) {
		t.Errorf("log = %+v", cfg.Log)
	}
	if cfg.Limits != defaultLimits() {
		t.Errorf("limits = %+v, want %+v", cfg.Limits, defaultLimits())
	}
	if !reflect.DeepEqual(cfg.Reminders, Reminders{WarnBefore: DefaultWarnBefore, Interval: DefaultReminderInterval,
		NotifyAt: DefaultNotifyAt, NotifyFailingAfter: DefaultNotifyFailing, NotifyInterval: DefaultNotifyInterval}) {
		t.Errorf("reminders = %+v", cfg.Reminders)
	}
	want := VaultAppRoleAuth{RoleID: "r", SecretIDFile: "/etc/upsproxy/secret-id", MountPath: "approle"}
	if cfg.Vault.Auth.Method != AuthAppRole || cfg.Vault.Auth.AppRole == nil || *cfg.Vault.Auth.AppRole != want {
		t.Errorf("approle auth = %+v, want %+v", cfg.Vault.Auth.AppRole, want)
	}
	c, ok := cfg.Carrier("main")
	if !ok {
		t.Fatal("carrier main not found")
	}
	if c.Grant != ups.GrantAuthorizationCode || c.Inactive || c.Default || c.ClientSecret.IsSet() || !isPKCE(c) {
		t.Errorf("carrier defaults wrong: %+v", c)
	}
	if _, ok := defaultCarrier(cfg); ok {
		t.Error("a carrier not marked default must not be the default carrier")
	}
}

func TestKubernetesAuthDefaultsToTheServiceAccountTokenAndMount(t *testing.T) {
	cfg, _, diags := LoadBytes([]byte("vault {\n  auth \"kubernetes\" { role = \"upsproxy\" }\n}\n"), "c.hcl")
	if len(diags) > 0 {
		t.Fatalf("unexpected diagnostics:%s", describe(diags))
	}
	want := VaultKubernetesAuth{Role: "upsproxy", TokenFile: DefaultKubernetesTokenFile, MountPath: "kubernetes"}
	if got := cfg.Vault.Auth.Kubernetes; got == nil || *got != want || cfg.Vault.Auth.Method != AuthKubernetes {
		t.Errorf("kubernetes auth = %+v, want %+v", got, want)
	}
}

func TestTheFullFixtureDecodesEveryKeyIntoTypedFields(t *testing.T) {
	setFixtureEnv(t)
	path := filepath.Join("testdata", "valid", "full.hcl")
	cfg, _, diags := Load(path)
	if len(diags) > 0 {
		t.Fatalf("unexpected diagnostics:%s", describe(diags))
	}
	dir := filepath.Join("testdata", "valid")

	if cfg.Listen != "127.0.0.1:18080" || cfg.AdminListen != "127.0.0.1:19090" || cfg.TransactionSrc != "warehouse-erp" {
		t.Errorf("top level = %q %q %q", cfg.Listen, cfg.AdminListen, cfg.TransactionSrc)
	}
	wantCIDRs := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.168.1.7/32"),
		netip.MustParsePrefix("2001:db8::/32"),
	}
	if !reflect.DeepEqual(cfg.AllowCIDRs, wantCIDRs) {
		t.Errorf("allow_cidrs = %v, want %v", cfg.AllowCIDRs, wantCIDRs)
	}
	if cfg.Log != (Log{Level: "debug", Format: "console"}) {
		t.Errorf("log = %+v", cfg.Log)
	}

	v := cfg.Vault
	if v.Address != "https://vault.internal:8200" || v.Mount != "kv" || v.Prefix != "ups/proxy" {
		t.Errorf("vault = %+v (prefix slashes must be trimmed)", v)
	}
	if v.CACert != filepath.Join(dir, "vault-ca.pem") {
		t.Errorf("vault ca_cert = %q, want it relative to the config file's directory", v.CACert)
	}
	wantAppRole := VaultAppRoleAuth{RoleID: "d6b1d3a5-role", SecretIDFile: "/run/secrets/upsproxy-secret-id", Wrapped: true, MountPath: "approle-ups"}
	if v.Auth.Method != AuthAppRole || v.Auth.AppRole == nil || *v.Auth.AppRole != wantAppRole || v.Auth.Token != nil || v.Auth.Kubernetes != nil {
		t.Errorf("vault auth = %+v / %+v", v.Auth, v.Auth.AppRole)
	}

	if cfg.MITM == nil || *cfg.MITM != (MITM{CACert: "/etc/upsproxy/ca.pem", CAKey: filepath.Join(dir, "ca-key.pem"),
		SessionTickets: false, TicketRotation: 2 * time.Hour}) {
		t.Errorf("mitm = %+v", cfg.MITM)
	}
	if got := cfg.UPS.URL(ups.Test).String(); got != "http://127.0.0.1:18443" {
		t.Errorf("test url = %q", got)
	}
	if got := cfg.UPS.URL(ups.Production).String(); got != "https://onlinetools.ups.example:8443" {
		t.Errorf("production url = %q, want the trailing slash dropped", got)
	}
	if cfg.UPS.CAFile != filepath.Join(dir, "sim-ca.pem") {
		t.Errorf("ups ca_file = %q", cfg.UPS.CAFile)
	}
	if cfg.UPS.WarmConnections != 4 || !cfg.UPS.HTTP2 {
		t.Errorf("ups warm_connections = %d, http2 = %v; want 4, true", cfg.UPS.WarmConnections, cfg.UPS.HTTP2)
	}
	if !reflect.DeepEqual(cfg.Reminders, Reminders{WarnBefore: 336 * time.Hour, Interval: 30 * time.Minute,
		NotifyAt: DefaultNotifyAt, NotifyFailingAfter: DefaultNotifyFailing, NotifyInterval: DefaultNotifyInterval}) {
		t.Errorf("reminders = %+v", cfg.Reminders)
	}
	wantLimits := Limits{
		MaxRequestBody: 20 << 20, BodyScanLimit: 65536, MaxConnections: 64,
		ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 90 * time.Second,
		UpstreamTimeout: 45 * time.Second, ShutdownGrace: 15 * time.Second,
		TLSHandshakeTimeout: 7 * time.Second, MaxHeaderBytes: 32 << 10,
		RequestBodyTimeout: 20 * time.Second, RequestBodyMinRate: 512,
	}
	if cfg.Limits != wantLimits {
		t.Errorf("limits = %+v, want %+v", cfg.Limits, wantLimits)
	}

	if len(cfg.Rewrites) != 2 {
		t.Fatalf("rewrites = %d, want 2", len(cfg.Rewrites))
	}
	if got, ok := cfg.Rewrites[0].Apply("/ship/v1/rating/Shop"); !ok || got != "/api/rating/v2409/Shop" {
		t.Errorf("legacy-rate rewrite gave %q, %v", got, ok)
	}
	if got, ok := cfg.Rewrites[1].Apply("/track/v1/details/1Z999"); !ok || got != "/api/track/v1/details/1Z999" {
		t.Errorf("legacy-track rewrite ($${number} in HCL) gave %q, %v", got, ok)
	}

	if len(cfg.Clients) != 2 || cfg.Clients[0].Name != "warehouse-1" || cfg.Clients[0].Carrier != "main" || cfg.Clients[1].Carrier != "" {
		t.Errorf("clients = %+v", cfg.Clients)
	}
	if cl, ok := clientNamed(cfg, "shipcenter"); !ok || !strings.HasPrefix(cl.PasswordHash, "$2a$10$") {
		t.Errorf("client shipcenter = %+v, %v", cl, ok)
	}

	if len(cfg.Carriers) != 3 {
		t.Fatalf("carriers = %d, want 3", len(cfg.Carriers))
	}
	main, _ := defaultCarrier(cfg)
	if main == nil || main.Name != "main" {
		t.Fatalf("default carrier = %+v", main)
	}
	wantMain := Carrier{
		Name: "main", Environment: ups.Production, Default: true, Grant: ups.GrantAuthorizationCode,
		ClientID: "main-client-id", ClientSecret: Secret{Value: testClientSecret},
		RedirectURI: "https://127.0.0.1/upscallback", MerchantID: "W599Y7", Scope: "read",
		FillShipperNumber: true,
	}
	gotMain := *main
	gotMain.ShipperAccounts, gotMain.DeclRange = nil, hcl.Range{}
	if !reflect.DeepEqual(gotMain, wantMain) {
		t.Errorf("carrier main =\n %#v\nwant\n %#v", gotMain, wantMain)
	}
	if main.DeclRange.Start.Line != 79 {
		t.Errorf("carrier main DeclRange = %s, want line 79", main.DeclRange)
	}
	acct, ok := main.DefaultShipperAccount()
	if !ok || acct.Name != "SalesPad" || acct.Number != "W599Y7" || acct.PostalCode != "49525" || acct.CountryCode != "US" {
		t.Errorf("default shipper account = %+v", acct)
	}
	if c, ok := carrierForShipper(cfg, "A1B2C3"); !ok || c.Name != "main" {
		t.Errorf("shipper number written a1b2c3 must be found as A1B2C3, got %+v", c)
	}

	cie, _ := cfg.Carrier("cie")
	if cie.Environment != ups.Test || !cie.Inactive || cie.Grant != ups.GrantClientCredentials || cie.ClientSecret.Value != "ups-secret-from-file" || isPKCE(cie) {
		t.Errorf("carrier cie = %+v (secret %q)", cie, cie.ClientSecret.Value)
	}
	vaulted, _ := cfg.Carrier("vaulted")
	if want := (Secret{VaultPath: "secret/data/ups/vaulted", VaultField: "client_secret"}); vaulted.ClientSecret != want || !vaulted.ClientSecret.IsVaultRef() {
		t.Errorf("vaulted secret = %#v, want %#v", vaulted.ClientSecret, want)
	}
}

func TestFunctionsInExpressions(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("from-file\r\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(dir, "secret.txt")
	t.Setenv("UPSPROXY_TEST_SECRET", "from-env")
	t.Setenv("UPSPROXY_TEST_EMPTY", "")

	tests := []struct {
		name   string
		expr   string
		want   Secret
		errSub string // non-empty: loading must fail with this text
	}{
		{name: "env reads a set variable", expr: `env("UPSPROXY_TEST_SECRET")`, want: Secret{Value: "from-env"}},
		{name: "env of a variable set to empty gives an unset secret", expr: `env("UPSPROXY_TEST_EMPTY")`, want: Secret{}},
		{name: "env of an unset variable is an error naming it", expr: `env("` + unsetVar + `")`, errSub: unsetVar + " is not set"},
		{name: "env with an empty name is an error", expr: `env("")`, errSub: "name is empty"},
		{name: "file trims trailing newlines and is relative to the config file", expr: `file("secret.txt")`, want: Secret{Value: "from-file"}},
		{name: "file accepts an absolute path", expr: `file("` + filepath.ToSlash(abs) + `")`, want: Secret{Value: "from-file"}},
		{name: "file of a missing file is an error", expr: `file("nope.txt")`, errSub: "no such file"},
		{name: "file of a directory is an error", expr: `file("sub")`, errSub: "not a regular file"},
		{name: "vault yields a reference and does not contact Vault", expr: `vault("/kv/data/ups/main/", "client_secret")`, want: Secret{VaultPath: "kv/data/ups/main", VaultField: "client_secret"}},
		{name: "vault with an empty path is an error", expr: `vault("", "f")`, errSub: "Vault path is empty"},
		{name: "vault accepts a mount with slashes", expr: `vault("kv/prod/data/ups/main", "client_secret")`, want: Secret{VaultPath: "kv/prod/data/ups/main", VaultField: "client_secret"}},
		{name: "vault without data/ names the path to write", expr: `vault("secret/upsproxy/main", "client_secret")`, errSub: `must be a KV version 2 path with data/ after the mount, like "secret/data/upsproxy/main" (what ` + "`vault kv get -mount=secret upsproxy/main`" + ` reads)`},
		{name: "vault of a bare mount is an error", expr: `vault("secret/data", "client_secret")`, errSub: `names no secret after data/, like "secret/data/upsproxy/main"`},
		{name: "vault of a metadata path is an error", expr: `vault("secret/metadata/ups/main", "client_secret")`, errSub: `is a metadata path: name the secret itself, with data/ after the mount, like "secret/data/ups/main"`},
		{name: "vault with an empty segment is an error", expr: `vault("secret/data//main", "client_secret")`, errSub: "empty segment"},
		{name: "vault with a dot-dot segment is an error", expr: `vault("secret/data/../sys", "client_secret")`, errSub: ". or .. segments"},
		{name: "vault with a query is an error", expr: `vault("secret/data/main?version=1", "client_secret")`, errSub: "must not contain spaces"},
		{name: "vault inside a template is not a string", expr: `"x${vault("kv/data/a", "f")}"`, errSub: "vault reference"},
		{name: "a secret that is a number is converted", expr: `12345`, want: Secret{Value: "12345"}},
		{name: "a list is not a secret", expr: `["a"]`, errSub: "must be a string"},
		{name: "an unknown function is an error", expr: `sops("x")`, errSub: "no function named"},
		{name: "functions can be combined", expr: `"${env("UPSPROXY_TEST_SECRET")}-${file("secret.txt")}"`, want: Secret{Value: "from-env-from-file"}},
		{name: "null means no secret", expr: `null`, want: Secret{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := `carrier "main" {
  environment   = "test"
  client_id     = "id"
  redirect_uri  = "https://127.0.0.1/upscallback"
  client_secret = ` + tt.expr + `
}
`
			cfg, _, diags := LoadBytes([]byte(src), filepath.Join(dir, "upsproxy.hcl"))
			if tt.errSub != "" {
				if cfg != nil || !strings.Contains(describe(diags), tt.errSub) {
					t.Fatalf("want an error containing %q, got:%s", tt.errSub, describe(diags))
				}
				for _, d := range errorsOf(diags) {
					if d.Subject == nil || d.Subject.Start.Line != 5 {
						t.Errorf("error should point at line 5 (client_secret), got:%s", describe(hcl.Diagnostics{d}))
					}
				}
				return
			}
			if diags.HasErrors() || len(warningsOf(diags)) > 0 && tt.expr != "12345" {
				t.Fatalf("unexpected diagnostics:%s", describe(diags))
			}
			if got := cfg.Carriers[0].ClientSecret; got != tt.want {
				t.Errorf("secret = %q/%q/%q, want %q/%q/%q", got.Value, got.VaultPath, got.VaultField, tt.want.Value, tt.want.VaultPath, tt.want.VaultField)
			}
		})
	}
}

func TestFunctionsWorkInAnyAttribute(t *testing.T) {
	t.Setenv("UPSPROXY_TEST_LISTEN", "127.0.0.1:7777")
	t.Setenv("UPSPROXY_TEST_CLIENT_ID", "id-from-env")
	src := `listen = env("UPSPROXY_TEST_LISTEN")
carrier "main" {
  environment  = "test"
  client_id    = env("UPSPROXY_TEST_CLIENT_ID")
  redirect_uri = "https://127.0.0.1/upscallback"
}
`
	cfg, _, diags := LoadBytes([]byte(src), "c.hcl")
	if len(diags) > 0 {
		t.Fatalf("unexpected diagnostics:%s", describe(diags))
	}
	if cfg.Listen != "127.0.0.1:7777" || cfg.Carriers[0].ClientID != "id-from-env" {
		t.Errorf("listen %q client_id %q", cfg.Listen, cfg.Carriers[0].ClientID)
	}
}

func TestFileRefusesToReadHugeFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "big"), bytes.Repeat([]byte("x"), maxFileFunctionSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, diags := LoadBytes([]byte(`transaction_src = file("big")`), filepath.Join(dir, "c.hcl"))
	if !strings.Contains(describe(diags), "larger than") {
		t.Fatalf("want a size error, got:%s", describe(diags))
	}
}

func TestALiteralSecretIsWarnedAboutWithoutShowingIt(t *testing.T) {
	src := `carrier "main" {
  environment   = "test"
  client_id     = "id"
  redirect_uri  = "https://127.0.0.1/upscallback"
  client_secret = "pasted-secret-value"
}
`
	cfg, files, diags := LoadBytes([]byte(src), "c.hcl")
	if cfg == nil || cfg.Carriers[0].ClientSecret.Value != "pasted-secret-value" {
		t.Fatalf("a literal secret must still be usable, got:%s", describe(diags))
	}
	if len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || diags[0].Summary != literalSecretWarning {
		t.Fatalf("want one literal-secret warning, got:%s", describe(diags))
	}
	if strings.Contains(diags[0].Summary+diags[0].Detail, "pasted-secret-value") {
		t.Error("the warning text repeats the secret")
	}
	var out bytes.Buffer
	if err := files.WriteDiagnostics(&out, diags, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "c.hcl:5:19: Warning: client_secret is a literal") {
		t.Errorf("printed warning lacks position or summary:\n%s", out.String())
	}
}

func TestSecretNeverPrintsItsValue(t *testing.T) {
	const value = "hunter2-s3cr3t"
	tests := []struct {
		name   string
		secret Secret
		want   string
	}{
		{"a set value prints as <set>", Secret{Value: value}, "<set>"},
		{"an empty secret prints as <not set>", Secret{}, "<not set>"},
		{"a vault reference prints its location", Secret{VaultPath: "kv/data/ups", VaultField: "secret"}, "vault:kv/data/ups#secret"},
		{"a resolved vault reference still hides the value", Secret{Value: value, VaultPath: "kv/data/ups", VaultField: "secret"}, "<set>"},
	}
	formats := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%10.3s", "%T %v"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.secret.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			carrier := Carrier{Name: "main", ClientSecret: tt.secret}
			for _, f := range formats {
				for _, v := range []any{tt.secret, &tt.secret, carrier, &carrier, []Secret{tt.secret}} {
					if got := sprintf(f, v); strings.Contains(got, value) || strings.Contains(got, "68756e74") {
						t.Errorf("fmt %s of %T leaks the value: %s", f, v, got)
					}
				}
			}
			js, err := jsonMarshal(carrier)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(js, value) {
				t.Errorf("JSON leaks the value: %s", js)
			}
		})
	}
}

func TestWriteDiagnosticsShowsFileLineColumnAndTheSourceLine(t *testing.T) {
	setFixtureEnv(t)
	path := filepath.Join("testdata", "invalid", "invalid-environment.hcl")
	_, files, diags := Load(path)
	if !diags.HasErrors() {
		t.Fatal("fixture should be invalid")
	}
	var out bytes.Buffer
	if err := files.WriteDiagnostics(&out, diags, false); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		path + ":3:17: Error: Invalid environment",
		`   3:   environment = "prod"`,
		`environment must be "test" or "production", not "prod".`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}

	out.Reset()
	if err := files.WriteDiagnostics(&out, diags, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "\x1b[") {
		t.Errorf("color output has no ANSI sequences:\n%q", out.String())
	}
}

func TestWriteDiagnosticsOfAMissingFileSaysWhichFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.hcl")
	cfg, files, diags := Load(path)
	if cfg != nil || !diags.HasErrors() || files == nil {
		t.Fatalf("want an error and non-nil Files, got cfg=%v files=%v diags=%s", cfg, files, describe(diags))
	}
	var out bytes.Buffer
	if err := files.WriteDiagnostics(&out, diags, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "missing.hcl") {
		t.Errorf("output does not name the file:\n%s", out.String())
	}
	var nilFiles *Files
	if err := nilFiles.WriteDiagnostics(&out, diags, false); err != nil {
		t.Errorf("nil Files must still print: %v", err)
	}
}

func TestAllErrorsAreReportedInOneRun(t *testing.T) {
	src := `listen = "nope"
log { level = "loud" }
carrier "a" {
  environment = "staging"
  client_id   = "id"
  redirect_uri = "https://127.0.0.1/cb"
}
`
	cfg, _, diags := LoadBytes([]byte(src), "c.hcl")
	if cfg != nil || len(errorsOf(diags)) != 3 {
		t.Fatalf("want 3 errors, got:%s", describe(diags))
	}
}

func TestLoadBytesWithNilSourceParsesAnEmptyConfigRatherThanReadingTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "real.hcl")
	if err := os.WriteFile(path, []byte(`listen = "127.0.0.1:1"`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, diags := LoadBytes(nil, path)
	if diags.HasErrors() || cfg.Listen != DefaultListen {
		t.Fatalf("LoadBytes(nil) read the file: listen=%v diags=%s", cfg, describe(diags))
	}
}

// Lookups the tests make; the program itself resolves carriers and clients
// in internal/proxy.

// defaultCarrier returns the carrier marked default = true, if any.
func defaultCarrier(cfg *Config) (*Carrier, bool) {
	for i := range cfg.Carriers {
		if cfg.Carriers[i].Default {
			return &cfg.Carriers[i], true
		}
	}
	return nil, false
}

// clientNamed returns the proxy client with the given user name.
func clientNamed(cfg *Config, name string) (*Client, bool) {
	for i := range cfg.Clients {
		if cfg.Clients[i].Name == name {
			return &cfg.Clients[i], true
		}
	}
	return nil, false
}

// carrierForShipper returns the carrier that owns a UPS shipper number,
// compared case-insensitively, as the proxy compares them.
func carrierForShipper(cfg *Config, number string) (*Carrier, bool) {
	for i := range cfg.Carriers {
		for _, a := range cfg.Carriers[i].ShipperAccounts {
			if strings.EqualFold(a.Number, number) {
				return &cfg.Carriers[i], true
			}
		}
	}
	return nil, false
}

// isPKCE reports whether the carrier logs in as a public client: the
// authorization-code grant without a client secret.
func isPKCE(c *Carrier) bool {
	return c.Grant == ups.GrantAuthorizationCode && !c.ClientSecret.IsSet()
}
