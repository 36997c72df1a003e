//go:build windows

package fileperm

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

func checkPrivate(path string) error {
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("read the access control list of %s: %w", path, err)
	}
	dacl, _, err := sd.DACL()
	if errors.Is(err, windows.ERROR_OBJECT_NOT_FOUND) || err == nil && dacl == nil {
		// No DACL, or a NULL one: everyone has full access.
		return checkACEs(path, true, nil)
	}
	if err != nil {
		return fmt.Errorf("read the access control list of %s: %w", path, err)
	}
	aces := make([]ace, 0, dacl.AceCount)
	for i := uint32(0); i < uint32(dacl.AceCount); i++ {
		var a *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &a); err != nil {
			return fmt.Errorf("read the access control list of %s: entry %d: %w", path, i, err)
		}
		e := ace{Type: a.Header.AceType, Flags: a.Header.AceFlags, Mask: uint32(a.Mask)}
		// Allowed, denied and callback ACEs keep the SID at SidStart;
		// other types (object ACEs) do not, and are not used on files.
		if e.Type == aceAllowed || e.Type == aceDenied || e.Type == aceAllowedCallback {
			e.SID = (*windows.SID)(unsafe.Pointer(&a.SidStart)).String()
		}
		aces = append(aces, e)
	}
	return checkACEs(path, false, aces)
}

func restrict(path string, dir bool) error {
	user := ""
	if tu, err := windows.GetCurrentProcessToken().GetTokenUser(); err == nil {
		user = tu.User.Sid.String()
	}
	sd, err := windows.SecurityDescriptorFromString(privateSDDL(user, dir))
	if err != nil {
		return fmt.Errorf("restrict %s to SYSTEM and Administrators: %w", path, err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("restrict %s to SYSTEM and Administrators: %w", path, err)
	}
	if err := windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
		return fmt.Errorf("restrict %s to SYSTEM and Administrators: %w", path, err)
	}
	return nil
}
