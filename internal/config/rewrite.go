package config

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Rewrite translates a legacy request path into a UPS REST path.
type Rewrite struct {
	Name string
	// Match is tested against the request path.
	Match *regexp.Regexp
	// Replace is the new path, a regexp.Expand template ($1, ${name}); it
	// always starts with /api/.
	Replace   string
	DeclRange hcl.Range
}

// Apply returns the rewritten path when Match matches path. The whole path
// is replaced by the expanded template (not only the matched part), so the
// result always starts with /api/ even for an unanchored pattern.
func (r Rewrite) Apply(path string) (string, bool) {
	if r.Match == nil {
		return path, false
	}
	m := r.Match.FindStringSubmatchIndex(path)
	if m == nil {
		return path, false
	}
	return string(r.Match.ExpandString(nil, r.Replace, path, m)), true
}

type rawRewrite struct {
	Name      string    `hcl:"name,label"`
	Match     *string   `hcl:"match,optional"`
	Replace   *string   `hcl:"replace,optional"`
	Body      hcl.Body  `hcl:",body"`
	DeclRange hcl.Range `hcl:",def_range"`
}

func (r *rawRewrite) build(bd *builder) (Rewrite, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	b := bd.block(r.Body, r.DeclRange)
	out := Rewrite{Name: r.Name, DeclRange: r.DeclRange}
	switch {
	case b.absent("match", r.Match != nil):
		diags = append(diags, b.missing("match", "a regular expression matched against the request path"))
	case b.given("match", r.Match != nil):
		re, err := regexp.Compile(*r.Match)
		if err != nil {
			diags = append(diags, b.errorf("match", "Invalid regular expression",
				"match must be a Go regular expression (https://pkg.go.dev/regexp/syntax): %s.", err))
		} else {
			out.Match = re
		}
	}
	switch {
	case b.absent("replace", r.Replace != nil):
		diags = append(diags, b.missing("replace", "the UPS path the request is sent to, starting with /api/"))
	case !b.given("replace", r.Replace != nil):
	case !strings.HasPrefix(*r.Replace, "/api/"):
		diags = append(diags, b.errorf("replace", "Invalid rewrite target",
			"replace must start with /api/: a rewrite may only lead to a UPS REST API path, not %q.", *r.Replace))
	default:
		out.Replace = *r.Replace
		if out.Match != nil {
			if why := templateProblem(out.Match, out.Replace); why != "" {
				diags = append(diags, b.errorf("replace", "Invalid rewrite target", "replace %s.", why))
			}
		}
	}
	return out, diags
}

// templateProblem finds a $reference in an Expand template that names no
// group of re: Expand silently turns those into "", which would send
// requests to a wrong path.
func templateProblem(re *regexp.Regexp, tmpl string) string {
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] != '$' {
			continue
		}
		rest := tmpl[i+1:]
		var name string
		switch {
		case strings.HasPrefix(rest, "$"):
			i++
			continue
		case strings.HasPrefix(rest, "{"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return "has an unterminated ${ reference"
			}
			name = rest[1:end]
			i += end + 1
		default:
			n := 0
			for n < len(rest) && isNameByte(rest[n]) {
				n++
			}
			name = rest[:n]
			i += n
		}
		if name == "" {
			return "has a $ not followed by a group number or name; write $$ for a literal $"
		}
		if num, err := strconv.Atoi(name); err == nil {
			if num > re.NumSubexp() {
				return fmt.Sprintf("refers to $%s but match has only %d group(s)", name, re.NumSubexp())
			}
			continue
		}
		if !slices.Contains(re.SubexpNames(), name) {
			return fmt.Sprintf("refers to ${%s} but match has no group named %q (note that $1x means the group named \"1x\"; write ${1}x)", name, name)
		}
	}
	return ""
}

func isNameByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
