package config

import (
	"bytes"
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// builder carries what the validation pass needs besides the decoded
// structs.
type builder struct {
	ctx *hcl.EvalContext
	// dir anchors relative paths: the configuration file's directory.
	dir string
	// decodeDiags are gohcl's diagnostics. An attribute they point at has
	// already been reported, so validation stays quiet about it rather
	// than adding a confusing second error for the same line.
	decodeDiags hcl.Diagnostics
}

// block locates attributes of one decoded body so validation diagnostics can
// point at the offending attribute, like HCL's own diagnostics do.
type block struct {
	bd   *builder
	body hcl.Body
	// def is the block header ("carrier \"main\""), used when the problem
	// is a missing attribute or the block as a whole.
	def hcl.Range
}

func (bd *builder) block(body hcl.Body, def hcl.Range) block {
	if def == (hcl.Range{}) && body != nil {
		def = body.MissingItemRange()
	}
	return block{bd: bd, body: body, def: def}
}

// path resolves a path written in the configuration.
func (bd *builder) path(p string) string { return resolvePath(bd.dir, p) }

func (b block) attr(name string) *hclsyntax.Attribute {
	sb, ok := b.body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	return sb.Attributes[name]
}

// failed reports whether decoding the attribute already produced an error
// (wrong type, env() of an unset variable...). Its Go value is then the zero
// value, which must not be reported again as missing or invalid.
func (b block) failed(name string) bool {
	a := b.attr(name)
	if a == nil {
		return false
	}
	for _, d := range b.bd.decodeDiags {
		if d.Severity == hcl.DiagError && d.Subject != nil && a.SrcRange.Overlaps(*d.Subject) {
			return true
		}
	}
	return false
}

// given reports whether an attribute decoded to a value to validate: it is
// written, not null, and gohcl did not already reject it. isSet is whether
// the decoded Go pointer is non-nil.
func (b block) given(name string, isSet bool) bool { return isSet && !b.failed(name) }

// absent reports whether a required attribute is really missing (not
// written, or null) rather than written with a value gohcl rejected.
func (b block) absent(name string, isSet bool) bool { return !isSet && !b.failed(name) }

// valueRange is the attribute's value, or the block header when absent.
func (b block) valueRange(name string) *hcl.Range {
	if a := b.attr(name); a != nil {
		return a.Expr.Range().Ptr()
	}
	return b.def.Ptr()
}

// attrRange is the whole "name = value" line, or the block header.
func (b block) attrRange(name string) *hcl.Range {
	if a := b.attr(name); a != nil {
		return a.SrcRange.Ptr()
	}
	return b.def.Ptr()
}

// elemRange is the range of the i-th element of a list attribute, falling
// back to the whole value.
func (b block) elemRange(name string, i int) *hcl.Range {
	if a := b.attr(name); a != nil {
		if t, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok && i < len(t.Exprs) {
			return t.Exprs[i].Range().Ptr()
		}
	}
	return b.valueRange(name)
}

// errorf is an error about the value of attribute name.
func (b block) errorf(name, summary, detailFormat string, args ...any) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(detailFormat, args...),
		Subject:  b.valueRange(name),
		Context:  b.attrRange(name),
	}
}

// missing is the error for a required attribute that is absent.
func (b block) missing(name, what string) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Missing required argument",
		Detail:   fmt.Sprintf("The argument %q is required: %s.", name, what),
		Subject:  b.def.Ptr(),
	}
}

// blockErrorf is an error about the block as a whole.
func (b block) blockErrorf(summary, detailFormat string, args ...any) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(detailFormat, args...),
		Subject:  b.def.Ptr(),
	}
}

// deref returns *p, or def when p is nil.
func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// dropFollowUpErrors removes gohcl's "Unsuitable value type" errors about an
// expression that already failed to evaluate (env() of an unset variable,
// say): gohcl still converts the unknown placeholder the failed evaluation
// leaves and reports "value must be known", a second error that only
// distracts from the real one.
func dropFollowUpErrors(diags hcl.Diagnostics) hcl.Diagnostics {
	const unsuitable = "Unsuitable value type"
	out := make(hcl.Diagnostics, 0, len(diags))
	for i, d := range diags {
		if d.Summary == unsuitable && d.Context != nil && hasErrorWithin(diags, i, *d.Context, unsuitable) {
			continue
		}
		out = append(out, d)
	}
	return out
}

// hasErrorWithin reports whether an error other than diags[skip], with a
// summary other than except, lies within r.
func hasErrorWithin(diags hcl.Diagnostics, skip int, r hcl.Range, except string) bool {
	for j, o := range diags {
		if j != skip && o.Severity == hcl.DiagError && o.Summary != except && o.Subject != nil && r.Overlaps(*o.Subject) {
			return true
		}
	}
	return false
}

// secretAttributes are the attributes whose values must never be shown in
// a diagnostic's source snippet: every Secret-valued attribute (a client
// secret or SMTP password written as a literal is the very thing the
// literal-secret warning is about; a webhook URL or header can carry a
// token), and a proxy client's bcrypt hash, which can be attacked offline.
// A new Secret attribute belongs here (TestEverySecretAttributeIsMasked).
var secretAttributes = map[string]bool{
	"client_secret": true, // carrier
	"password_hash": true, // client
	"password":      true, // notify email
	"url":           true, // notify webhook
	"headers":       true, // notify webhook
	"egress_proxy":  true, // ups: user:password@ in the URL
}

// safeFunctions take arguments that name where a secret is (a variable, a
// file, a Vault path), not the secret: a snippet shows them, which is what
// helps fix a typo.
var safeFunctions = map[string]bool{"env": true, "file": true, "vault": true}

// maskSecrets returns a copy of src, an HCL file, with the values of
// secretAttributes replaced by '*', byte for byte (newlines kept), so that
// every diagnostic range still points at the same line and column. It
// works on tokens, not on the syntax tree, so a file that does not even
// parse (an unterminated string, a bad escape inside the secret) is masked
// too. Inside a value, what a safe function gets (env("NAME")) stays, as
// do punctuation and function names; literals, bare words, numbers,
// comments and anything the lexer cannot classify are masked.
func maskSecrets(src []byte) []byte {
	tokens, _ := hclsyntax.LexConfig(src, "", hcl.InitialPos)
	out := bytes.Clone(src)
	mask := func(r hcl.Range) {
		for i := r.Start.Byte; i < r.End.Byte && i < len(out); i++ {
			if out[i] != '\n' && out[i] != '\r' {
				out[i] = '*'
			}
		}
	}
	lineStart := true
	for i := 0; i < len(tokens); i++ {
		tok := tokens[i]
		atStart := lineStart
		lineStart = tok.Type == hclsyntax.TokenNewline ||
			(tok.Type == hclsyntax.TokenComment && bytes.HasSuffix(tok.Bytes, []byte("\n"))) ||
			tok.Type == hclsyntax.TokenOBrace
		if !atStart || tok.Type != hclsyntax.TokenIdent || !secretAttributes[string(tok.Bytes)] ||
			i+1 >= len(tokens) || tokens[i+1].Type != hclsyntax.TokenEqual {
			continue
		}
		// The value runs to the first newline outside brackets.
		depth := 0
		var safe []int // depths at which a safe function's arguments began
		for i += 2; i < len(tokens); i++ {
			t := tokens[i]
			switch t.Type {
			case hclsyntax.TokenOParen, hclsyntax.TokenOBrack, hclsyntax.TokenOBrace,
				hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
				depth++
				if t.Type == hclsyntax.TokenOParen && i > 0 && tokens[i-1].Type == hclsyntax.TokenIdent &&
					safeFunctions[string(tokens[i-1].Bytes)] {
					safe = append(safe, depth)
				}
				continue
			case hclsyntax.TokenCParen, hclsyntax.TokenCBrack, hclsyntax.TokenCBrace, hclsyntax.TokenTemplateSeqEnd:
				if len(safe) > 0 && safe[len(safe)-1] == depth {
					safe = safe[:len(safe)-1]
				}
				if depth > 0 {
					depth--
				}
				continue
			case hclsyntax.TokenNewline, hclsyntax.TokenEOF:
				if depth == 0 {
					lineStart = true
				}
			case hclsyntax.TokenOQuote, hclsyntax.TokenCQuote, hclsyntax.TokenOHeredoc, hclsyntax.TokenCHeredoc,
				hclsyntax.TokenComma, hclsyntax.TokenEqual, hclsyntax.TokenColon:
				continue
			case hclsyntax.TokenIdent:
				if i+1 < len(tokens) && (tokens[i+1].Type == hclsyntax.TokenOParen ||
					depth > 0 && (tokens[i+1].Type == hclsyntax.TokenEqual || tokens[i+1].Type == hclsyntax.TokenColon)) {
					continue // a function name, or an object key (a header name)
				}
				fallthrough
			default:
				if len(safe) == 0 || t.Type == hclsyntax.TokenComment {
					mask(t.Range)
				}
				if t.Type == hclsyntax.TokenComment && bytes.HasSuffix(t.Bytes, []byte("\n")) && depth == 0 {
					lineStart = true
				}
			}
			if lineStart {
				break
			}
		}
	}
	return out
}

// maskedFiles returns files with maskSecrets applied to each source, for
// printing snippets.
func maskedFiles(files map[string]*hcl.File) map[string]*hcl.File {
	out := make(map[string]*hcl.File, len(files))
	for name, f := range files {
		if f == nil {
			continue
		}
		out[name] = &hcl.File{Body: f.Body, Bytes: maskSecrets(f.Bytes), Nav: f.Nav}
	}
	return out
}
