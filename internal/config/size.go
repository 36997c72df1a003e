package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeUnits maps the accepted unit suffixes (compared case-insensitively) to
// their multiplier. Binary and decimal units are both accepted because ops
// copy numbers from both kinds of documentation.
var sizeUnits = map[string]int64{
	"b":   1,
	"kb":  1000,
	"mb":  1000 * 1000,
	"gb":  1000 * 1000 * 1000,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
}

// errSizeSyntax is returned for a size that is not a whole number followed by
// an optional unit.
var errSizeSyntax = errors.New("want a whole number of bytes with an optional unit B, KiB, MiB, GiB, KB, MB or GB, like \"10MiB\"")

// ParseSize parses a byte size such as "10MiB", "512 KB" or "1048576" (a
// plain integer is a number of bytes). Negative sizes and sizes that do not
// fit in an int64 are errors; zero is accepted here and rejected by callers
// that need a positive size.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("size %q: %w", s, errSizeSyntax)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	unit := strings.ToLower(strings.TrimSpace(t[i:]))
	mult := int64(1)
	if unit != "" {
		m, ok := sizeUnits[unit]
		if !ok {
			return 0, fmt.Errorf("size %q: unknown unit %q: %w", s, strings.TrimSpace(t[i:]), errSizeSyntax)
		}
		mult = m
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * mult, nil
}
