package config

import (
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

const exampleConfig = "../../config/upsproxy.hcl"

func TestTheShippedExampleConfigIsValidAndWarningFree(t *testing.T) {
	t.Setenv("UPS_CLIENT_SECRET", "example-secret")
	t.Setenv("UPS_CIE_CLIENT_SECRET", "example-cie-secret")
	t.Setenv("SMTP_PASSWORD", "example-smtp-password")
	t.Setenv("SLACK_WEBHOOK_URL", "https://hooks.example.com/services/T0/B0/x")
	cfg, _, diags := Load(exampleConfig)
	if len(diags) > 0 {
		t.Fatalf("the example config has diagnostics:%s", describe(diags))
	}
	if c, ok := defaultCarrier(cfg); !ok || c.ClientSecret.Value != "example-secret" {
		t.Errorf("default carrier = %+v", c)
	}
}

func TestTheShippedExampleConfigDocumentsEveryKeyOfTheSchema(t *testing.T) {
	src, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	attrs, blocks := schemaNames(reflect.TypeOf(rawConfig{}))
	for method, schema := range authMethodSchemas() {
		blocks[`auth "`+method+`"`] = true
		a, b := schemaNames(reflect.TypeOf(schema))
		for n := range a {
			attrs[n] = true
		}
		for n := range b {
			blocks[n] = true
		}
	}
	if len(attrs) < 40 || !attrs["client_secret"] || !blocks["shipper_account"] || !attrs["role_id"] {
		t.Fatalf("schema walk looks broken: %d attributes %v, blocks %v", len(attrs), sorted(attrs), sorted(blocks))
	}
	// A key counts as documented when it appears as "name =" (attribute)
	// or "name {" / "name \"label\"" (block) on a line of its own,
	// commented out or not: alternatives such as the other auth methods
	// can only be shown in comments.
	for _, name := range sorted(attrs) {
		re := regexp.MustCompile(`(?m)^\s*(#\s*)?` + regexp.QuoteMeta(name) + `\s*=`)
		if !re.Match(src) {
			t.Errorf("attribute %q is not documented in %s", name, exampleConfig)
		}
	}
	for _, name := range sorted(blocks) {
		re := regexp.MustCompile(`(?m)^\s*(#\s*)?` + regexp.QuoteMeta(name) + `\s*[{"]`)
		if !re.Match(src) {
			t.Errorf("block %q is not documented in %s", name, exampleConfig)
		}
	}
}

// schemaNames collects the attribute and block names of a gohcl-tagged
// struct type, recursing into blocks.
func schemaNames(ty reflect.Type) (attrs, blocks map[string]bool) {
	attrs, blocks = map[string]bool{}, map[string]bool{}
	var walk func(reflect.Type)
	walk = func(ty reflect.Type) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice {
			ty = ty.Elem()
		}
		for i := 0; i < ty.NumField(); i++ {
			f := ty.Field(i)
			tag, ok := f.Tag.Lookup("hcl")
			if !ok {
				continue
			}
			name, kind, _ := strings.Cut(tag, ",")
			switch kind {
			case "", "attr", "optional":
				attrs[name] = true
			case "block":
				blocks[name] = true
				walk(f.Type)
			}
		}
	}
	walk(ty)
	return attrs, blocks
}

func sorted(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
