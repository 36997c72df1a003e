package fileperm

import (
	"fmt"
	"sort"
	"strings"
)

// ace is one access control entry of a Windows DACL, as read by
// checkPrivate on Windows.
type ace struct {
	// Type is 0 (access allowed), 1 (access denied) or another ACE type.
	Type uint8
	// Flags are the ACE header flags (inheritOnlyACE matters here).
	Flags uint8
	Mask  uint32
	// SID in string form, for example "S-1-1-0".
	SID string
}

// Windows constants (golang.org/x/sys/windows names), repeated here so the
// decision compiles and is tested on every OS.
const (
	aceAllowed          = 0    // ACCESS_ALLOWED_ACE_TYPE
	aceDenied           = 1    // ACCESS_DENIED_ACE_TYPE
	aceAllowedCallback  = 9    // ACCESS_ALLOWED_CALLBACK_ACE_TYPE
	inheritOnlyACE      = 0x08 // INHERIT_ONLY_ACE: applies to children, not this object
	fileReadData        = 0x00000001
	writeDAC            = 0x00040000
	writeOwner          = 0x00080000
	maximumAllowed      = 0x02000000
	genericAll          = 0x10000000
	genericRead         = 0x80000000
	sidSystem           = "S-1-5-18"
	sidAdministrators   = "S-1-5-32-544"
	sidEveryone         = "S-1-1-0"
	domainSIDPrefix     = "S-1-5-21-"
	domainUsersRID      = "-513"
	domainGuestsRID     = "-514"
	exposingAccessRight = fileReadData | genericRead | genericAll | maximumAllowed |
		// Whoever may rewrite the DACL or take ownership can grant
		// themselves read access.
		writeDAC | writeOwner
)

// broadSIDs are the well-known groups that stand for "anyone on this
// machine" (or domain); a secret must grant them nothing.
var broadSIDs = map[string]string{
	sidEveryone:    "Everyone",
	"S-1-5-11":     "Authenticated Users",
	"S-1-5-32-545": `BUILTIN\Users`,
	"S-1-5-32-546": `BUILTIN\Guests`,
	"S-1-5-7":      "ANONYMOUS LOGON",
	"S-1-5-4":      "INTERACTIVE",
	"S-1-5-2":      "NETWORK",
}

// broadName returns the name of a broad group, or "".
func broadName(sid string) string {
	if n, ok := broadSIDs[sid]; ok {
		return n
	}
	if strings.HasPrefix(sid, domainSIDPrefix) {
		switch {
		case strings.HasSuffix(sid, domainUsersRID):
			return "Domain Users"
		case strings.HasSuffix(sid, domainGuestsRID):
			return "Domain Guests"
		}
	}
	return ""
}

// checkACEs applies the Windows rule to a file's DACL. A NULL DACL grants
// everyone everything. Entries are evaluated in order, as Windows does: a
// deny entry for a group (or Everyone) before an allow entry cancels the
// rights it names. Conditional (callback) allow entries count as allow: the
// check errs on the side of calling a file exposed.
func checkACEs(path string, nullDACL bool, aces []ace) error {
	if nullDACL {
		return exposed(path, []string{"Everyone (the file has no access control list)"}, nil)
	}
	denied := map[string]uint32{}
	who := map[string]bool{}
	var sids []string
	for _, a := range aces {
		if a.Flags&inheritOnlyACE != 0 {
			continue
		}
		name := broadName(a.SID)
		if name == "" {
			continue
		}
		switch a.Type {
		case aceDenied:
			denied[a.SID] |= a.Mask
		case aceAllowed, aceAllowedCallback:
			rights := a.Mask & exposingAccessRight &^ denied[a.SID] &^ denied[sidEveryone]
			if rights != 0 && !who[name] {
				who[name] = true
				sids = append(sids, a.SID)
			}
		}
	}
	if len(sids) == 0 {
		return nil
	}
	names := make([]string, 0, len(who))
	for n := range who {
		names = append(names, n)
	}
	sort.Strings(names)
	return exposed(path, names, sids)
}

func exposed(path string, names, sids []string) error {
	fix := fmt.Sprintf("run `icacls %s /inheritance:r /grant:r *%s:F *%s:F`", winQuote(path), sidSystem, sidAdministrators)
	if len(sids) > 0 {
		rm := make([]string, len(sids))
		for i, s := range sids {
			rm[i] = "*" + s
		}
		fix += fmt.Sprintf(" and `icacls %s /remove:g %s`", winQuote(path), strings.Join(rm, " "))
	}
	fix += " in an elevated prompt (only SYSTEM and Administrators keep access; the service runs as LocalSystem)"
	return &ExposedError{Path: path, Who: strings.Join(names, ", "), Fix: fix}
}

// winQuote quotes a path for cmd.exe and PowerShell alike.
func winQuote(path string) string { return `"` + path + `"` }

// privateSDDL is the DACL Restrict sets on Windows: protected (nothing
// inherited), full control for SYSTEM, Administrators and userSID; with
// dir, inherited by files and folders created inside.
func privateSDDL(userSID string, dir bool) string {
	inherit := ""
	if dir {
		inherit = "OICI"
	}
	sddl := fmt.Sprintf("D:P(A;%[1]s;FA;;;SY)(A;%[1]s;FA;;;BA)", inherit)
	if userSID != "" && userSID != sidSystem && userSID != sidAdministrators {
		sddl += fmt.Sprintf("(A;%s;FA;;;%s)", inherit, userSID)
	}
	return sddl
}
