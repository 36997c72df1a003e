package fileperm

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestCheckModeUnixRule(t *testing.T) {
	for _, tc := range []struct {
		mode fs.FileMode
		ok   bool
	}{
		{0o600, true}, {0o400, true}, {0o700, true}, {0o000, true},
		{0o640, false}, {0o604, false}, {0o644, false}, {0o620, false}, {0o602, false}, {0o666, false},
	} {
		err := checkMode("/etc/upsproxy/ca-key.pem", tc.mode)
		if tc.ok != (err == nil) {
			t.Errorf("mode %04o: err %v, want ok=%v", tc.mode, err, tc.ok)
			continue
		}
		if err != nil {
			var ee *ExposedError
			if !errors.As(err, &ee) {
				t.Fatalf("mode %04o: %T, want *ExposedError", tc.mode, err)
			}
			for _, want := range []string{"/etc/upsproxy/ca-key.pem", "chmod 600 /etc/upsproxy/ca-key.pem", "group or others"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("mode %04o: %q lacks %q", tc.mode, err, want)
				}
			}
		}
	}
}

func TestCheckModeQuotesAPathWithSpaces(t *testing.T) {
	err := checkMode("/srv/my certs/ca-key.pem", 0o644)
	if err == nil || !strings.Contains(err.Error(), "chmod 600 \"/srv/my certs/ca-key.pem\"") {
		t.Fatalf("got %v", err)
	}
}

const (
	users     = "S-1-5-32-545"
	authUsers = "S-1-5-11"
	alice     = "S-1-5-21-1004336348-1177238915-682003330-1001"
	domUsers  = "S-1-5-21-1004336348-1177238915-682003330-513"
	// Masks as icacls grants them.
	fullControl = 0x001f01ff
	readExecute = 0x001200a9
	writeOnly   = 0x00100116 // FILE_GENERIC_WRITE without read data
)

// A typical file created in C:\ProgramData inherits read access for Users.
var programDataInherited = []ace{
	{Type: aceAllowed, Flags: 0x10, Mask: fullControl, SID: sidSystem},
	{Type: aceAllowed, Flags: 0x10, Mask: fullControl, SID: sidAdministrators},
	{Type: aceAllowed, Flags: 0x10, Mask: fullControl, SID: alice},
	{Type: aceAllowed, Flags: 0x10, Mask: readExecute, SID: users},
}

func TestCheckACEsWindowsRule(t *testing.T) {
	for _, tc := range []struct {
		name    string
		null    bool
		aces    []ace
		exposed string // "" means private
	}{
		{"what Restrict sets", false, []ace{
			{Type: aceAllowed, Mask: fullControl, SID: sidSystem},
			{Type: aceAllowed, Mask: fullControl, SID: sidAdministrators},
			{Type: aceAllowed, Mask: fullControl, SID: alice},
		}, ""},
		{"empty DACL: nobody but the owner's implicit rights", false, nil, ""},
		{"NULL DACL", true, nil, "Everyone (the file has no access control list)"},
		{"inherited from ProgramData", false, programDataInherited, `BUILTIN\Users`},
		{"Everyone read", false, []ace{{Type: aceAllowed, Mask: 0x80000000, SID: sidEveryone}}, "Everyone"},
		{"Authenticated Users full control", false, []ace{{Type: aceAllowed, Mask: fullControl, SID: authUsers}}, "Authenticated Users"},
		{"Domain Users read", false, []ace{{Type: aceAllowed, Mask: readExecute, SID: domUsers}}, "Domain Users"},
		{"Users may rewrite the DACL", false, []ace{{Type: aceAllowed, Mask: writeDAC, SID: users}}, `BUILTIN\Users`},
		{"Users write without read", false, []ace{{Type: aceAllowed, Mask: writeOnly, SID: users}}, ""},
		{"inherit-only entry does not apply to the file", false, []ace{{Type: aceAllowed, Flags: inheritOnlyACE, Mask: fullControl, SID: users}}, ""},
		{"deny before allow cancels it", false, []ace{
			{Type: aceDenied, Mask: fullControl, SID: users},
			{Type: aceAllowed, Mask: readExecute, SID: users},
		}, ""},
		{"deny Everyone before allow Users cancels it", false, []ace{
			{Type: aceDenied, Mask: fileReadData | writeDAC | writeOwner | genericRead | genericAll | maximumAllowed, SID: sidEveryone},
			{Type: aceAllowed, Mask: readExecute, SID: users},
		}, ""},
		{"deny after allow does not", false, []ace{
			{Type: aceAllowed, Mask: readExecute, SID: users},
			{Type: aceDenied, Mask: fullControl, SID: users},
		}, `BUILTIN\Users`},
		{"partial deny leaves read", false, []ace{
			{Type: aceDenied, Mask: writeDAC, SID: users},
			{Type: aceAllowed, Mask: readExecute, SID: users},
		}, `BUILTIN\Users`},
		{"conditional allow counts", false, []ace{{Type: aceAllowedCallback, Mask: readExecute, SID: sidEveryone}}, "Everyone"},
		{"two groups, named once each, sorted", false, []ace{
			{Type: aceAllowed, Mask: readExecute, SID: users},
			{Type: aceAllowed, Mask: readExecute, SID: sidEveryone},
			{Type: aceAllowed, Mask: fullControl, SID: users},
		}, `BUILTIN\Users, Everyone`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkACEs(`C:\ProgramData\upsproxy\ca-key.pem`, tc.null, tc.aces)
			if tc.exposed == "" {
				if err != nil {
					t.Fatalf("want private, got %v", err)
				}
				return
			}
			var ee *ExposedError
			if !errors.As(err, &ee) {
				t.Fatalf("want *ExposedError, got %v", err)
			}
			if ee.Who != tc.exposed {
				t.Errorf("who = %q, want %q", ee.Who, tc.exposed)
			}
			if !strings.Contains(ee.Fix, `icacls "C:\ProgramData\upsproxy\ca-key.pem" /inheritance:r /grant:r *S-1-5-18:F *S-1-5-32-544:F`) {
				t.Errorf("fix lacks the icacls command: %s", ee.Fix)
			}
		})
	}
}

func TestExposedFixRemovesTheGroupsNamed(t *testing.T) {
	err := checkACEs(`C:\k.pem`, false, []ace{
		{Type: aceAllowed, Mask: readExecute, SID: users},
		{Type: aceAllowed, Mask: readExecute, SID: domUsers},
	})
	var ee *ExposedError
	if !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if want := `icacls "C:\k.pem" /remove:g *S-1-5-32-545 *` + domUsers; !strings.Contains(ee.Fix, want) {
		t.Errorf("fix %q lacks %q", ee.Fix, want)
	}
}

func TestPrivateSDDL(t *testing.T) {
	for _, tc := range []struct {
		user string
		dir  bool
		want string
	}{
		{alice, false, "D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;" + alice + ")"},
		{sidSystem, false, "D:P(A;;FA;;;SY)(A;;FA;;;BA)"},
		{"", true, "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"},
		{alice, true, "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;" + alice + ")"},
	} {
		if got := privateSDDL(tc.user, tc.dir); got != tc.want {
			t.Errorf("privateSDDL(%q, %v) = %q, want %q", tc.user, tc.dir, got, tc.want)
		}
	}
}

// TestCheckPrivateAndRestrictOnThisOS runs the real implementation of this
// OS: a file opened up is exposed, Restrict makes it private.
func TestCheckPrivateAndRestrictOnThisOS(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the Windows implementation is exercised on Windows only")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "secret")
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	var ee *ExposedError
	if err := CheckPrivate(p); !errors.As(err, &ee) {
		t.Fatalf("0644: want *ExposedError, got %v", err)
	}
	if err := Restrict(p); err != nil {
		t.Fatal(err)
	}
	if err := CheckPrivate(p); err != nil {
		t.Fatalf("after Restrict: %v", err)
	}
	if err := CheckPrivate(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if err := RestrictDir(dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v %v", fi.Mode(), err)
	}
}
