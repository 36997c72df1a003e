// Package config loads upsproxy's HCL configuration: the schema, defaults,
// the env()/file()/vault() functions and a validation pass whose diagnostics
// point at the offending line, ready to print with a source snippet.
//
// Only cmd imports this package; it hands each other package its own small
// options struct built from a Config.
package config

import (
	"io"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// Config is a loaded, validated configuration with every default applied.
type Config struct {
	// Path is the file the configuration was read from.
	Path string
	// Listen is the proxy's listen address (host:port).
	Listen string
	// AdminListen serves /healthz, /readyz, /status and /metrics.
	AdminListen string
	// TransactionSrc is sent as the transactionSrc header when a client
	// did not send one.
	TransactionSrc string
	// AllowCIDRs restricts the client source addresses the proxy accepts;
	// empty means every address.
	AllowCIDRs []netip.Prefix
	Log        Log
	Vault      Vault
	// MITM is nil when no mitm block is configured.
	MITM      *MITM
	UPS       UPS
	Reminders Reminders
	Limits    Limits
	// Rewrites are applied in file order.
	Rewrites []Rewrite
	// Clients, when not empty, make proxy authentication mandatory.
	Clients  []Client
	Carriers []Carrier
	// Notify are the reminder channels (email, webhooks).
	Notify []Notify
	// FileFunctionPaths are the files file() read, usually secrets.
	FileFunctionPaths []string
	// Console is nil unless a console block with a listen address exists.
	Console *Console
}

// Carrier returns the carrier with the given name.
func (c *Config) Carrier(name string) (*Carrier, bool) {
	for i := range c.Carriers {
		if c.Carriers[i].Name == name {
			return &c.Carriers[i], true
		}
	}
	return nil, false
}

// Files holds the source of the parsed configuration so diagnostics can be
// printed with a snippet of the offending lines.
type Files struct {
	files map[string]*hcl.File
}

// WriteDiagnostics prints diags the way HCL tools do (summary, source
// snippet with the subject highlighted, detail), each preceded by a
// "file:line:column: " position that editors and grep understand. color adds
// ANSI colours for terminals. The snippets never show the value of a
// secret attribute (client_secret, password_hash): it is masked with '*'.
func (f *Files) WriteDiagnostics(w io.Writer, diags hcl.Diagnostics, color bool) error {
	var files map[string]*hcl.File
	if f != nil {
		files = maskedFiles(f.files)
	}
	tw := hcl.NewDiagnosticTextWriter(w, files, 0, color)
	for _, d := range diags {
		if d.Subject != nil {
			if _, err := io.WriteString(w, position(d.Subject)+": "); err != nil {
				return err
			}
		}
		if err := tw.WriteDiagnostic(d); err != nil {
			return err
		}
	}
	return nil
}

// position formats r's start as file:line:column.
func position(r *hcl.Range) string {
	return r.Filename + ":" + strconv.Itoa(r.Start.Line) + ":" + strconv.Itoa(r.Start.Column)
}

// Load reads, decodes and validates the configuration file at path. Relative
// paths inside it (file() arguments, certificate and key files) are relative
// to the file's directory. The Config is nil when diags has errors; warnings
// come with a usable Config. Files is never nil.
func Load(path string) (*Config, *Files, hcl.Diagnostics) {
	return osEnvironment().load(path, func(p *hclparse.Parser) (*hcl.File, hcl.Diagnostics) {
		return p.ParseHCLFile(path)
	})
}

// LoadBytes is Load for a configuration held in memory; filename names it in
// diagnostics and anchors relative paths.
func LoadBytes(src []byte, filename string) (*Config, *Files, hcl.Diagnostics) {
	return osEnvironment().loadBytes(src, filename)
}

func (e environment) loadBytes(src []byte, filename string) (*Config, *Files, hcl.Diagnostics) {
	return e.load(filename, func(p *hclparse.Parser) (*hcl.File, hcl.Diagnostics) {
		return p.ParseHCL(src, filename)
	})
}

// load parses the configuration with parse, then decodes and validates it.
func (e environment) load(filename string, parse func(*hclparse.Parser) (*hcl.File, hcl.Diagnostics)) (*Config, *Files, hcl.Diagnostics) {
	parser := hclparse.NewParser()
	file, diags := parse(parser)
	files := &Files{files: parser.Files()}
	// Decoding a file with syntax errors only adds confusing follow-up
	// errors; the syntax errors are what the user must fix first.
	if diags.HasErrors() || file == nil || file.Body == nil {
		return nil, files, diags
	}

	dir := filepath.Dir(filename)
	// Remember what file() read: the caller checks who else can read it.
	var read []string
	readFile := e.readFile
	e.readFile = func(p string) ([]byte, error) {
		b, err := readFile(p)
		if err == nil && !slices.Contains(read, p) {
			read = append(read, p)
		}
		return b, err
	}
	ctx := e.evalContext(dir)
	var raw rawConfig
	diags = append(diags, dropFollowUpErrors(gohcl.DecodeBody(file.Body, ctx, &raw))...)
	cfg, vdiags := raw.build(ctx, dir, diags)
	diags = append(diags, vdiags...)
	if diags.HasErrors() {
		return nil, files, diags
	}
	cfg.Path = filename
	cfg.FileFunctionPaths = read
	return cfg, files, diags
}
