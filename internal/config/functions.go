package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// maxFileFunctionSize bounds what file() reads: it is meant for secrets and
// small values, and a limit keeps a mistyped path (a log file, /dev/zero)
// from eating the process's memory.
const maxFileFunctionSize = 1 << 20

// vaultRef is what vault("path", "field") evaluates to. It is a cty capsule
// so it can only land where the schema expects a Secret: any attribute that
// wants a string rejects it with a type error instead of silently using the
// reference text as a value.
type vaultRef struct {
	Path, Field string
}

var vaultRefType = cty.Capsule("vault reference", reflect.TypeOf(vaultRef{}))

// environment is what the loader needs from the outside world to evaluate
// env() and file(). Tests and the fuzz target replace it so that evaluating
// arbitrary input never blocks on a device file or depends on the host.
type environment struct {
	lookupEnv func(name string) (string, bool)
	readFile  func(path string) ([]byte, error)
}

// osEnvironment is the real process environment and file system.
func osEnvironment() environment {
	return environment{lookupEnv: os.LookupEnv, readFile: readSmallRegularFile}
}

// readSmallRegularFile reads a regular file of at most maxFileFunctionSize
// bytes. Anything else (directories, FIFOs, devices) is refused because
// reading it could block or never end.
func readSmallRegularFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFileFunctionSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileFunctionSize {
		return nil, fmt.Errorf("larger than %d bytes", maxFileFunctionSize)
	}
	return b, nil
}

// evalContext returns the functions available in configuration expressions.
// dir is the configuration file's directory: file() paths are relative to it
// so a config works whatever the working directory of the process.
func (e environment) evalContext(dir string) *hcl.EvalContext {
	return &hcl.EvalContext{
		Functions: map[string]function.Function{
			"env":   e.envFunc(),
			"file":  e.fileFunc(dir),
			"vault": vaultFunc(),
		},
	}
}

func (e environment) envFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Returns the value of an environment variable; an unset variable is an error.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			name := args[0].AsString()
			if name == "" {
				return cty.NilVal, function.NewArgErrorf(0, "the environment variable name is empty")
			}
			v, ok := e.lookupEnv(name)
			if !ok {
				return cty.NilVal, function.NewArgErrorf(0, "environment variable %s is not set", name)
			}
			return cty.StringVal(v), nil
		},
	})
}

func (e environment) fileFunc(dir string) function.Function {
	return function.New(&function.Spec{
		Description: "Returns the contents of a file, trailing newlines removed; relative paths start at the configuration file's directory.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			if p == "" {
				return cty.NilVal, function.NewArgErrorf(0, "the file path is empty")
			}
			p = resolvePath(dir, p)
			b, err := e.readFile(p)
			if err != nil {
				// The error text names the path and the reason, never the
				// content, so it is safe to show.
				return cty.NilVal, function.NewArgErrorf(0, "cannot read %s: %s", p, describeFileError(err))
			}
			return cty.StringVal(strings.TrimRight(string(b), "\r\n")), nil
		},
	})
}

// describeFileError shortens the common errors: *fs.PathError repeats the
// path, which the caller already shows.
func describeFileError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func vaultFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Refers to a field of a Vault secret; the value is read from Vault at start-up, not while parsing.",
		Params: []function.Parameter{
			{Name: "path", Type: cty.String},
			{Name: "field", Type: cty.String},
		},
		Type: function.StaticReturnType(vaultRefType),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			path := strings.Trim(args[0].AsString(), "/")
			field := args[1].AsString()
			if path == "" {
				return cty.NilVal, function.NewArgErrorf(0, "the Vault path is empty")
			}
			if why := checkVaultPath(path); why != "" {
				return cty.NilVal, function.NewArgErrorf(0, "the Vault path %q %s", path, why)
			}
			if field == "" {
				return cty.NilVal, function.NewArgErrorf(1, "the Vault field name is empty")
			}
			return cty.CapsuleVal(vaultRefType, &vaultRef{Path: path, Field: field}), nil
		},
	})
}

// checkVaultPath says what is wrong with a vault() path (slashes around
// it already trimmed), or "". The path is the KV version 2 API path,
// <mount>/data/<name>: the path a policy grants, and one that is never
// ambiguous, since a mount may itself contain slashes ("kv/prod").
func checkVaultPath(path string) string {
	segs := strings.Split(path, "/")
	for _, seg := range segs {
		switch {
		case seg == "":
			return "has an empty segment (//)"
		case seg == "." || seg == "..":
			return "must not contain . or .. segments"
		case strings.ContainsFunc(seg, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '?' || r == '#' || r == '%' }):
			return "must not contain spaces, control characters, ?, # or %"
		}
	}
	if i := slices.Index(segs, "data"); i >= 1 && i < len(segs)-1 {
		return ""
	}
	if segs[len(segs)-1] == "data" {
		return "names no secret after data/, like \"" + strings.Join(segs, "/") + "/upsproxy/main\""
	}
	if len(segs) > 2 && segs[1] == "metadata" {
		return "is a metadata path: name the secret itself, with data/ after the mount, like \"" + segs[0] + "/data/" + strings.Join(segs[2:], "/") + "\""
	}
	example := "secret/data/upsproxy/main"
	if len(segs) > 1 {
		example = segs[0] + "/data/" + strings.Join(segs[1:], "/")
	}
	return "must be a KV version 2 path with data/ after the mount, like \"" + example + "\" (what `vault kv get -mount=" +
		strings.SplitN(example, "/", 2)[0] + " " + strings.SplitN(example, "/data/", 2)[1] + "` reads)"
}

// resolvePath makes a relative path relative to the configuration file's
// directory. Empty and absolute paths are returned unchanged.
func resolvePath(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}
