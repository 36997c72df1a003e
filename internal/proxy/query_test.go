package proxy

import "testing"

func TestStripQueryCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"":                                     "",
		"locale=en_US&returnSignature=false":   "locale=en_US&returnSignature=false",
		"access_token=stale":                   "",
		"access_token=upsproxy1_a.b&locale=en": "locale=en",
		"locale=en&access_token=upsproxy1_a.b": "locale=en",
		"a=1&access_token=x&b=2":               "a=1&b=2",
		"a=1&access%5Ftoken=x&b=2":             "a=1&b=2",
		"a=1&Access_Token=x":                   "a=1",
		"a=1&token=upsproxy1_a.b&b=2":          "a=1&b=2",
		"a=1&token=%75psproxy1_a.b":            "a=1",
		"a=1;access_token=upsproxy1_a.b&b=2":   "b=2",
		"a=1&&b=2":                             "a=1&&b=2",
	} {
		if got := stripQueryCredentials(in); got != want {
			t.Errorf("stripQueryCredentials(%q) = %q, want %q", in, got, want)
		}
	}
	q := "locale=en_US&returnSignature=false&returnMilestones=false"
	if n := testing.AllocsPerRun(100, func() { _ = stripQueryCredentials(q) }); n != 0 {
		t.Errorf("a query without credentials costs %v allocations, want 0", n)
	}
}
