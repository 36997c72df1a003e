package config

import (
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Log configures the process logger.
type Log struct {
	// Level is debug, info, warn or error.
	Level string
	// Format is json or console.
	Format string
}

// Defaults and accepted values of the log block.
const (
	DefaultLogLevel  = "info"
	DefaultLogFormat = "json"
)

// logLevels are the accepted log levels, most verbose first.
var logLevels = []string{"debug", "info", "warn", "error"}

// logFormats are the accepted log encodings.
var logFormats = []string{"json", "console"}

type rawLog struct {
	Level  *string  `hcl:"level,optional"`
	Format *string  `hcl:"format,optional"`
	Body   hcl.Body `hcl:",body"`
}

func (r *rawLog) build(bd *builder) (Log, hcl.Diagnostics) {
	out := Log{Level: DefaultLogLevel, Format: DefaultLogFormat}
	if r == nil {
		return out, nil
	}
	var diags hcl.Diagnostics
	b := bd.block(r.Body, hcl.Range{})
	oneOf := func(name string, p *string, allowed []string, def string) string {
		if !b.given(name, p != nil) {
			return def
		}
		if !slices.Contains(allowed, *p) {
			diags = append(diags, b.errorf(name, "Invalid log "+name,
				"log %s must be one of %s, not %q.", name, strings.Join(allowed, ", "), *p))
			return def
		}
		return *p
	}
	out.Level = oneOf("level", r.Level, logLevels, DefaultLogLevel)
	out.Format = oneOf("format", r.Format, logFormats, DefaultLogFormat)
	return out, diags
}
