// Package examples holds no code: its test checks that the deployment
// examples under examples/ work as written. Every upsproxy.hcl there (and
// the one inside the Kubernetes ConfigMap) must load with the real loader and
// no diagnostic at all, given what the deployment provides (environment
// variables, systemd credentials), and the paths, ports and names that a
// manifest and its configuration must agree on must agree: a mismatch there
// is a deployment that does not start, or a proxy nobody can reach.
package examples

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v4"
	"golang.org/x/crypto/bcrypt"

	"github.com/upsproxy/upsproxy/internal/config"
)

// envRef finds env("NAME") calls in a configuration, credentialRef the
// systemd credentials it reads as ${env("CREDENTIALS_DIRECTORY")}/NAME.
var (
	envRef        = regexp.MustCompile(`\benv\("([A-Za-z_][A-Za-z0-9_]*)"\)`)
	credentialRef = regexp.MustCompile(`\$\{env\("CREDENTIALS_DIRECTORY"\)\}/([A-Za-z0-9._-]+)`)
)

// credentialsDirectory is the variable systemd sets for LoadCredential=.
const credentialsDirectory = "CREDENTIALS_DIRECTORY"

// exampleConfig is one configuration shipped in the examples.
type exampleConfig struct {
	name string // for messages and diagnostics
	src  []byte
}

// exampleConfigs returns every *.hcl file under examples/ and the HCL held
// by the Kubernetes ConfigMap.
func exampleConfigs(t *testing.T) []exampleConfig {
	t.Helper()
	var out []exampleConfig
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".hcl" {
			return err
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out = append(out, exampleConfig{name: p, src: src})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, exampleConfig{name: "kubernetes/configmap.yaml (upsproxy.hcl)", src: []byte(configMapHCL(t))})
	return out
}

var (
	hashOnce sync.Once
	hash     string
	hashErr  error
)

// passwordHash is a real bcrypt hash, as a deployment's secret would hold;
// computed once, at the cheapest cost, to keep the test fast.
func passwordHash(t *testing.T) string {
	t.Helper()
	hashOnce.Do(func() {
		var b []byte
		b, hashErr = bcrypt.GenerateFromPassword([]byte("example proxy password"), bcrypt.MinCost)
		hash = string(b)
	})
	if hashErr != nil {
		t.Fatal(hashErr)
	}
	return hash
}

// loadExample loads src as a deployment would run it: every environment
// variable it names is set (a bcrypt hash for *_PASSWORD_HASH, a directory
// holding the referenced credentials for CREDENTIALS_DIRECTORY, a
// placeholder otherwise) and every diagnostic, warnings included, fails the
// test. File paths the loader does not open (certificates, token files) are
// only checked against the manifests, by the wiring tests.
func loadExample(t *testing.T, name string, src []byte) *config.Config {
	t.Helper()
	for _, m := range envRef.FindAllSubmatch(src, -1) {
		v := string(m[1])
		switch {
		case v == credentialsDirectory:
			dir := t.TempDir()
			for _, c := range credentialRef.FindAllSubmatch(src, -1) {
				if err := os.WriteFile(filepath.Join(dir, string(c[1])), []byte("example-credential\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv(v, dir)
		case strings.HasSuffix(v, "_PASSWORD_HASH"):
			t.Setenv(v, passwordHash(t))
		default:
			t.Setenv(v, "example-"+strings.ToLower(v))
		}
	}
	cfg, files, diags := config.LoadBytes(src, name)
	if len(diags) > 0 {
		var buf bytes.Buffer
		_ = files.WriteDiagnostics(&buf, diags, false)
		t.Fatalf("%s: %d diagnostic(s); an example must load cleanly:\n%s", name, len(diags), buf.String())
	}
	return cfg
}

func TestEveryExampleConfigLoadsWithoutErrorsOrWarnings(t *testing.T) {
	configs := exampleConfigs(t)
	if len(configs) < 3 {
		t.Fatalf("found %d example configs, want the docker-compose, systemd and Kubernetes ones", len(configs))
	}
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			cfg := loadExample(t, c.name, c.src)
			if cfg.MITM == nil {
				t.Errorf("no mitm block: HTTPS_PROXY clients, the mode most legacy software uses, would be refused")
			}
			for _, car := range cfg.Carriers {
				if !car.ClientSecret.IsSet() {
					t.Errorf("carrier %q has no client_secret: login would silently fall back to PKCE", car.Name)
				}
			}
		})
	}
}

func TestEveryYAMLFileUnderExamplesParses(t *testing.T) {
	n := 0
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (filepath.Ext(p) != ".yaml" && filepath.Ext(p) != ".yml") {
			return err
		}
		n++
		t.Run(p, func(t *testing.T) {
			docs := decodeAll(t, p)
			if len(docs) == 0 {
				t.Errorf("%s holds no YAML document", p)
			}
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 8 {
		t.Errorf("found %d YAML files under examples/, want at least the compose file and the Kubernetes manifests", n)
	}
}

// decodeAll decodes every document of a YAML file.
func decodeAll(t *testing.T, p string) []any {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var docs []any
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if v != nil {
			docs = append(docs, v)
		}
	}
}

// decodeStrict decodes the single document of a YAML file into v, refusing
// keys v does not know (a misspelt key is otherwise silently ignored).
func decodeStrict(t *testing.T, p string, v any) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
}

// decodeLoose decodes the single document of a YAML file into v, ignoring
// keys v does not declare (the manifests have many the tests do not check).
func decodeLoose(t *testing.T, p string, v any) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
}

// port returns the port of a host:port listen address.
func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	return p
}

// flagValue returns the argument after flag in args.
func flagValue(args []string, flag string) (string, bool) {
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		return "", false
	}
	return args[i+1], true
}

// envNames returns the variables a configuration reads with env().
func envNames(src []byte) []string {
	var out []string
	for _, m := range envRef.FindAllSubmatch(src, -1) {
		if n := string(m[1]); !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// --- docker compose ---

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	EnvFile     []struct {
		Path string `yaml:"path"`
	} `yaml:"env_file"`
	Ports   []string `yaml:"ports"`
	Volumes []string `yaml:"volumes"`
}

// mount finds the "source:target[:mode]" volume of s whose source is
// source, returning target and mode.
func (s composeService) mount(source string) (target, mode string, ok bool) {
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[0] == source {
			if len(parts) == 3 {
				mode = parts[2]
			}
			return parts[1], mode, true
		}
	}
	return "", "", false
}

func TestDockerComposeFileAndConfigAgree(t *testing.T) {
	var cf composeFile
	decodeLoose(t, "docker-compose/compose.yaml", &cf)
	src, err := os.ReadFile("docker-compose/upsproxy.hcl")
	if err != nil {
		t.Fatal(err)
	}
	cfg := loadExample(t, "docker-compose/upsproxy.hcl", src)
	up, ok := cf.Services["upsproxy"]
	if !ok {
		t.Fatal("compose.yaml has no upsproxy service")
	}

	t.Run("the config upsproxy is told to read is the mounted file, read-only", func(t *testing.T) {
		p, ok := flagValue(up.Command, "--config")
		if !ok {
			t.Fatalf("upsproxy command %q has no --config", up.Command)
		}
		target, mode, ok := up.mount("./upsproxy.hcl")
		if !ok || target != p || mode != "ro" {
			t.Errorf("./upsproxy.hcl is mounted at %q (mode %q), want %q read-only", target, mode, p)
		}
		if got := up.Environment["UPSPROXY_CONFIG"]; got != p {
			t.Errorf("UPSPROXY_CONFIG = %q, want %q so that `docker compose exec upsproxy upsproxy login` reads the same file", got, p)
		}
	})

	t.Run("the MITM CA that ca-init writes is the one the config reads", func(t *testing.T) {
		target, mode, ok := up.mount("upsproxy-ca")
		if !ok || mode != "ro" {
			t.Fatalf("upsproxy does not mount the upsproxy-ca volume read-only: %q", up.Volumes)
		}
		for _, p := range []string{cfg.MITM.CACert, cfg.MITM.CAKey} {
			if path.Dir(p) != target {
				t.Errorf("the config reads %s, but the CA volume is mounted at %s", p, target)
			}
		}
		ca := cf.Services["ca-init"]
		out, ok := flagValue(ca.Command, "--out")
		caTarget, _, mounted := ca.mount("upsproxy-ca")
		if !ok || !mounted || out != caTarget {
			t.Errorf("ca-init writes to %q but mounts upsproxy-ca at %q", out, caTarget)
		}
		if _, ok := cf.Volumes["upsproxy-ca"]; !ok {
			t.Error("the upsproxy-ca volume is not declared")
		}
	})

	t.Run("both listeners are published on the host's loopback only", func(t *testing.T) {
		want := []string{port(t, cfg.Listen), port(t, cfg.AdminListen)}
		var got []string
		for _, p := range up.Ports {
			host, rest, ok := strings.Cut(p, ":")
			if !ok || host != "127.0.0.1" {
				t.Errorf("port %q is not bound to 127.0.0.1: anyone on the network could use the proxy", p)
				continue
			}
			_, container, _ := strings.Cut(rest, ":")
			got = append(got, container)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("published container ports %v, want the config's listen and admin_listen ports %v", got, want)
		}
	})

	t.Run("the Vault address names the compose vault service", func(t *testing.T) {
		host := strings.TrimPrefix(cfg.Vault.Address, "http://")
		host, _, _ = strings.Cut(host, ":")
		if _, ok := cf.Services[host]; !ok {
			t.Errorf("vault address %q names no compose service", cfg.Vault.Address)
		}
	})

	t.Run("every secret the config reads is listed in upsproxy.env.example", func(t *testing.T) {
		if len(up.EnvFile) != 1 || up.EnvFile[0].Path != "./upsproxy.env" {
			t.Fatalf("upsproxy env_file = %+v, want ./upsproxy.env", up.EnvFile)
		}
		example, err := os.ReadFile("docker-compose/upsproxy.env.example")
		if err != nil {
			t.Fatal(err)
		}
		names := envNames(src)
		if cfg.Vault.Auth.Method == config.AuthToken && cfg.Vault.Auth.Token.TokenFile == "" {
			names = append(names, "VAULT_TOKEN")
		}
		for _, n := range names {
			if !regexp.MustCompile(`(?m)^#? ?` + n + `=`).Match(example) {
				t.Errorf("the config needs %s, but upsproxy.env.example does not show it", n)
			}
		}
	})
}

// --- Kubernetes ---

type k8sMeta struct {
	Name        string            `yaml:"name"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe  *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe   *k8sProbe `yaml:"livenessProbe"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type k8sProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sDeployment struct {
	Spec struct {
		Replicas int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata k8sMeta `yaml:"metadata"`
			Spec     struct {
				ServiceAccountName string `yaml:"serviceAccountName"`
				SecurityContext    struct {
					RunAsNonRoot   bool `yaml:"runAsNonRoot"`
					SeccompProfile struct {
						Type string `yaml:"type"`
					} `yaml:"seccompProfile"`
				} `yaml:"securityContext"`
				InitContainers []k8sContainer `yaml:"initContainers"`
				Containers     []k8sContainer `yaml:"containers"`
				Volumes        []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
					Projected *struct {
						Sources []struct {
							ServiceAccountToken *struct {
								Audience string `yaml:"audience"`
								Path     string `yaml:"path"`
							} `yaml:"serviceAccountToken"`
						} `yaml:"sources"`
					} `yaml:"projected"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// mountPath returns where container c mounts the volume named volume.
func (c k8sContainer) mountPath(volume string) (string, bool) {
	for _, m := range c.VolumeMounts {
		if m.Name == volume {
			return m.MountPath, true
		}
	}
	return "", false
}

// containerPort returns the number of c's port named name.
func (c k8sContainer) containerPort(name string) (int, bool) {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

type k8sConfigMap struct {
	Metadata k8sMeta           `yaml:"metadata"`
	Data     map[string]string `yaml:"data"`
}

// configMapHCL returns the upsproxy.hcl held by the Kubernetes ConfigMap.
func configMapHCL(t *testing.T) string {
	t.Helper()
	var cm k8sConfigMap
	decodeLoose(t, "kubernetes/configmap.yaml", &cm)
	src, ok := cm.Data["upsproxy.hcl"]
	if !ok || strings.TrimSpace(src) == "" {
		t.Fatal("kubernetes/configmap.yaml has no data.upsproxy.hcl")
	}
	return src
}

func TestKubernetesManifestsAndConfigAgree(t *testing.T) {
	var dep k8sDeployment
	decodeLoose(t, "kubernetes/deployment.yaml", &dep)
	var cm k8sConfigMap
	decodeLoose(t, "kubernetes/configmap.yaml", &cm)
	src := []byte(configMapHCL(t))
	cfg := loadExample(t, "kubernetes/configmap.yaml (upsproxy.hcl)", src)
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("the pod has %d containers, want 1 (upsproxy)", len(pod.Containers))
	}
	c := pod.Containers[0]
	volumeMount := func(volume string) string {
		t.Helper()
		p, ok := c.mountPath(volume)
		if !ok {
			t.Fatalf("the upsproxy container does not mount volume %q", volume)
		}
		return p
	}

	t.Run("upsproxy reads the config from the mounted ConfigMap", func(t *testing.T) {
		p, ok := flagValue(c.Args, "--config")
		if !ok {
			t.Fatalf("args %q have no --config", c.Args)
		}
		var volume string
		for _, v := range pod.Volumes {
			if v.ConfigMap != nil && v.ConfigMap.Name == cm.Metadata.Name {
				volume = v.Name
			}
		}
		if volume == "" {
			t.Fatalf("no volume uses ConfigMap %q", cm.Metadata.Name)
		}
		if want := volumeMount(volume) + "/upsproxy.hcl"; p != want {
			t.Errorf("--config %s, but the ConfigMap's upsproxy.hcl is at %s", p, want)
		}
		for _, e := range c.Env {
			if e.Name == "UPSPROXY_CONFIG" && e.Value != p {
				t.Errorf("UPSPROXY_CONFIG = %q, want %q so that `kubectl exec ... upsproxy login` reads the same file", e.Value, p)
			}
		}
	})

	t.Run("every variable the config reads comes from the container's environment", func(t *testing.T) {
		for _, n := range envNames(src) {
			found := false
			for _, e := range c.Env {
				if e.Name == n && (e.Value != "" || e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil) {
					found = true
				}
			}
			if !found {
				t.Errorf("the config reads env(%q), which the Deployment does not set: the pod would exit at start", n)
			}
		}
	})

	t.Run("the MITM CA is read where the init container copies it", func(t *testing.T) {
		dir := volumeMount("mitm-ca")
		for _, p := range []string{cfg.MITM.CACert, cfg.MITM.CAKey} {
			if path.Dir(p) != dir {
				t.Errorf("the config reads %s, but the CA volume is mounted at %s", p, dir)
			}
		}
		if len(pod.InitContainers) != 1 {
			t.Fatalf("%d init containers, want the one that copies the CA", len(pod.InitContainers))
		}
		ic := pod.InitContainers[0]
		icDir, ok := ic.mountPath("mitm-ca")
		if !ok {
			t.Fatal("the init container does not mount mitm-ca")
		}
		script := strings.Join(ic.Command, " ")
		for _, p := range []string{cfg.MITM.CACert, cfg.MITM.CAKey} {
			if !strings.Contains(script, icDir+"/"+path.Base(p)) {
				t.Errorf("the init container does not write %s (as %s/%s): %q", p, icDir, path.Base(p), script)
			}
		}
		if !strings.Contains(script, "-m 0400 ") {
			t.Errorf("the init container does not give the key mode 0400, which upsproxy requires: %q", script)
		}
	})

	t.Run("Vault login uses the projected token with audience vault", func(t *testing.T) {
		if cfg.Vault.Auth.Method != config.AuthKubernetes {
			t.Fatalf("vault auth %q, want kubernetes", cfg.Vault.Auth.Method)
		}
		var want string
		for _, v := range pod.Volumes {
			if v.Projected == nil {
				continue
			}
			for _, s := range v.Projected.Sources {
				if s.ServiceAccountToken != nil && s.ServiceAccountToken.Audience == "vault" {
					want = volumeMount(v.Name) + "/" + s.ServiceAccountToken.Path
				}
			}
		}
		if got := cfg.Vault.Auth.Kubernetes.TokenFile; got != want || want == "" {
			t.Errorf("token_file %q, but the projected Vault token is at %q", got, want)
		}
	})

	t.Run("ports, probes and scrape annotations match the listeners", func(t *testing.T) {
		proxyPort, _ := c.containerPort("proxy")
		adminPort, _ := c.containerPort("admin")
		if strconv.Itoa(proxyPort) != port(t, cfg.Listen) {
			t.Errorf("containerPort proxy = %d, listen = %q", proxyPort, cfg.Listen)
		}
		if strconv.Itoa(adminPort) != port(t, cfg.AdminListen) {
			t.Errorf("containerPort admin = %d, admin_listen = %q", adminPort, cfg.AdminListen)
		}
		for name, p := range map[string]*k8sProbe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
			if p == nil {
				t.Errorf("no %s probe", name)
				continue
			}
			if p.HTTPGet.Port != "admin" && p.HTTPGet.Port != adminPort {
				t.Errorf("%s probe on port %v, want the admin port", name, p.HTTPGet.Port)
			}
		}
		if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("readiness probe on %q, want /readyz", c.ReadinessProbe.HTTPGet.Path)
		}
		if c.LivenessProbe != nil && c.LivenessProbe.HTTPGet.Path != "/healthz" {
			t.Errorf("liveness probe on %q, want /healthz: a Vault outage must not restart every replica", c.LivenessProbe.HTTPGet.Path)
		}
		ann := dep.Spec.Template.Metadata.Annotations
		if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != strconv.Itoa(adminPort) || ann["prometheus.io/path"] != "/metrics" {
			t.Errorf("prometheus annotations %v, want scrape true on port %d, path /metrics", ann, adminPort)
		}

		var svc struct {
			Spec struct {
				Selector map[string]string `yaml:"selector"`
				Ports    []struct {
					Name       string `yaml:"name"`
					TargetPort any    `yaml:"targetPort"`
				} `yaml:"ports"`
			} `yaml:"spec"`
		}
		decodeLoose(t, "kubernetes/service.yaml", &svc)
		for _, sp := range svc.Spec.Ports {
			name, _ := sp.TargetPort.(string)
			if _, ok := c.containerPort(name); !ok {
				t.Errorf("Service port %q targets %v, which names no container port", sp.Name, sp.TargetPort)
			}
		}
		if !matches(svc.Spec.Selector, dep.Spec.Template.Metadata.Labels) {
			t.Errorf("the Service selector %v selects no upsproxy pod (labels %v)", svc.Spec.Selector, dep.Spec.Template.Metadata.Labels)
		}
	})

	t.Run("the pod meets the restricted Pod Security Standard the namespace enforces", func(t *testing.T) {
		if !pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.SeccompProfile.Type != "RuntimeDefault" {
			t.Errorf("pod securityContext %+v, want runAsNonRoot and seccomp RuntimeDefault", pod.SecurityContext)
		}
		for _, ct := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
			sc := ct.SecurityContext
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || !sc.ReadOnlyRootFilesystem || !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
				t.Errorf("container %q securityContext %+v, want no privilege escalation, a read-only root and capabilities drop ALL", ct.Name, sc)
			}
			if ct.Resources.Requests["memory"] == "" || ct.Resources.Limits["memory"] == "" {
				t.Errorf("container %q has no memory request and limit", ct.Name)
			}
		}
	})

	t.Run("the ServiceAccount and PodDisruptionBudget refer to this Deployment", func(t *testing.T) {
		var sa struct{ Metadata k8sMeta }
		decodeLoose(t, "kubernetes/serviceaccount.yaml", &sa)
		if pod.ServiceAccountName != sa.Metadata.Name {
			t.Errorf("serviceAccountName %q, but the ServiceAccount is %q (Vault's role is bound to it)", pod.ServiceAccountName, sa.Metadata.Name)
		}
		var pdb struct {
			Spec struct {
				MaxUnavailable int `yaml:"maxUnavailable"`
				Selector       struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				} `yaml:"selector"`
			} `yaml:"spec"`
		}
		decodeLoose(t, "kubernetes/poddisruptionbudget.yaml", &pdb)
		if !matches(pdb.Spec.Selector.MatchLabels, dep.Spec.Template.Metadata.Labels) {
			t.Errorf("the PodDisruptionBudget selects %v, not the upsproxy pods", pdb.Spec.Selector.MatchLabels)
		}
		if pdb.Spec.MaxUnavailable < 1 || pdb.Spec.MaxUnavailable >= dep.Spec.Replicas {
			t.Errorf("maxUnavailable %d with %d replicas: drains would block or take every replica", pdb.Spec.MaxUnavailable, dep.Spec.Replicas)
		}
	})

	t.Run("kustomization lists every manifest", func(t *testing.T) {
		var k struct {
			Resources []string `yaml:"resources"`
		}
		decodeLoose(t, "kubernetes/kustomization.yaml", &k)
		for _, r := range k.Resources {
			if _, err := os.Stat(filepath.Join("kubernetes", r)); err != nil {
				t.Errorf("kustomization resource %s: %v", r, err)
			}
		}
		for _, want := range []string{"namespace.yaml", "serviceaccount.yaml", "configmap.yaml", "deployment.yaml", "service.yaml", "poddisruptionbudget.yaml"} {
			if !slices.Contains(k.Resources, want) {
				t.Errorf("kustomization.yaml does not apply %s", want)
			}
		}
	})
}

// matches reports whether selector selects an object with labels.
func matches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestPrometheusAlertRulesAreWellFormed(t *testing.T) {
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	decodeStrict(t, "kubernetes/prometheus-alerts.yaml", &rules)
	var exprs []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || strings.TrimSpace(r.Expr) == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %+v needs alert, expr, a severity label and a summary", r)
			}
			if strings.Count(r.Expr, "(") != strings.Count(r.Expr, ")") {
				t.Errorf("rule %s: unbalanced parentheses in %q", r.Alert, r.Expr)
			}
			exprs = append(exprs, r.Expr)
		}
	}
	all := strings.Join(exprs, "\n")
	// The metric names are part of SPEC.md's contract. "adopted" (another
	// replica refreshed first) is routine with several replicas: a rule
	// that counted it as a failure would page every few hours.
	for _, want := range []string{"upsproxy_refresh_token_expiry_timestamp_seconds", `upsproxy_token_refreshes_total{result!~"ok|adopted"}`} {
		if !strings.Contains(all, want) {
			t.Errorf("no alert rule uses %s", want)
		}
	}
}

// --- systemd ---

func TestSystemdUnitLoadsEveryCredentialTheConfigReads(t *testing.T) {
	unit, err := os.ReadFile("systemd/upsproxy.service")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("systemd/upsproxy.hcl")
	if err != nil {
		t.Fatal(err)
	}
	cfg := loadExample(t, "systemd/upsproxy.hcl", src)

	var loaded []string
	for _, line := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "LoadCredential="); ok {
			name, _, _ := strings.Cut(v, ":")
			loaded = append(loaded, name)
		}
	}
	var read []string
	for _, m := range credentialRef.FindAllSubmatch(src, -1) {
		read = append(read, string(m[1]))
	}
	slices.Sort(loaded)
	slices.Sort(read)
	if len(read) == 0 || !slices.Equal(slices.Compact(loaded), slices.Compact(read)) {
		t.Errorf("the unit loads credentials %v, the config reads %v: they must be the same", loaded, read)
	}

	// The CA key must be a credential: only there is it owned by the
	// dynamic user with mode 0400, which upsproxy requires of a CA key.
	dir := os.Getenv(credentialsDirectory)
	if cfg.MITM == nil || filepath.Dir(cfg.MITM.CAKey) != dir {
		t.Errorf("mitm ca_key is not read from $%s", credentialsDirectory)
	}
	if cfg.Vault.Auth.Method != config.AuthAppRole || filepath.Dir(cfg.Vault.Auth.AppRole.SecretIDFile) != dir {
		t.Errorf("the AppRole secret ID is not read from $%s", credentialsDirectory)
	}

	p, ok := flagValue(strings.Fields(unitValue(string(unit), "ExecStart")), "--config")
	if !ok || !filepath.IsAbs(p) {
		t.Errorf("ExecStart does not pass an absolute --config: %q", unitValue(string(unit), "ExecStart"))
	}
}

// unitValue returns the value of the last key= line of a unit file.
func unitValue(unit, key string) string {
	var v string
	for _, line := range strings.Split(unit, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), key+"="); ok {
			v = rest
		}
	}
	return v
}
