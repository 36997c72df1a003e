// Package fileperm decides, per operating system, whether a file that holds
// a secret (the MITM CA key, a file() secret, a Vault token file) can be
// read by more than its owner and the machine's administrators, and makes a
// new file private.
//
// On Unix the rule is the mode: no group or other bits. On Windows the mode
// Go reports says nothing (every writable file is 0666), so the file's DACL
// is read instead: no access for Everyone, (Authenticated) Users, Guests,
// anonymous, interactive or network logons, or Domain Users/Guests.
//
// The decisions themselves (checkMode, checkACEs, privateSDDL) are plain Go
// that the tests run on every OS; only reading and writing the DACL needs
// Windows.
package fileperm

import (
	"fmt"
	"strings"
)

// ExposedError says who besides the owner can read a file, and how to fix it.
type ExposedError struct {
	Path string
	// Who is "group or others (mode 0644)" on Unix, the group names on
	// Windows.
	Who string
	// Fix is the command(s) that make the file private.
	Fix string
}

func (e *ExposedError) Error() string {
	return fmt.Sprintf("%s is readable by %s: %s", e.Path, e.Who, e.Fix)
}

// CheckPrivate returns nil when only the file's owner (and, on Windows,
// SYSTEM and Administrators) can read path, an *ExposedError when others
// can, and another error when the file cannot be inspected.
func CheckPrivate(path string) error { return checkPrivate(path) }

// Restrict makes an existing file readable and writable by its owner only:
// mode 0600 on Unix; on Windows a protected DACL (no inherited entries)
// granting full control to SYSTEM, Administrators and the current user.
// Call it before writing the secret into the file.
func Restrict(path string) error { return restrict(path, false) }

// RestrictDir is Restrict for a directory: mode 0700 on Unix; on Windows
// the same DACL, inherited by everything created inside it.
func RestrictDir(path string) error { return restrict(path, true) }

// quote quotes a path for a shell command line in a fix message.
func quote(path string) string {
	if strings.ContainsAny(path, " \t'\"$`\\&;|()<>*?[]{}~#!") {
		return fmt.Sprintf("%q", path)
	}
	return path
}
