package fileperm

import (
	"fmt"
	"io/fs"
)

// checkMode applies the Unix rule to a file's mode: no bit for group or
// others.
func checkMode(path string, mode fs.FileMode) error {
	perm := mode.Perm()
	if perm&0o077 == 0 {
		return nil
	}
	return &ExposedError{
		Path: path,
		Who:  fmt.Sprintf("group or others (mode %04o)", perm),
		Fix:  fmt.Sprintf("run `chmod 600 %s` (in Kubernetes, mount the secret with defaultMode 0400)", quote(path)),
	}
}
