package main

import (
	"errors"
	"fmt"

	"github.com/upsproxy/upsproxy/internal/config"
	"github.com/upsproxy/upsproxy/internal/fileperm"
)

// secretFiles lists the files of cfg that hold secrets and that upsproxy
// reads itself: file() values and the Vault token or AppRole secret ID
// file. (The MITM CA key is refused outright by proxy.LoadCA; the
// Kubernetes service-account token is the kubelet's to protect.)
func secretFiles(cfg *config.Config) []string {
	files := append([]string(nil), cfg.FileFunctionPaths...)
	a := cfg.Vault.Auth
	if a.Token != nil && a.Token.TokenFile != "" {
		files = append(files, a.Token.TokenFile)
	}
	if a.AppRole != nil && a.AppRole.SecretIDFile != "" {
		files = append(files, a.AppRole.SecretIDFile)
	}
	return files
}

// warnExposedSecretFiles prints a warning for each secret file others can
// read (fileperm: the mode on Unix, the ACL on Windows). A warning, not a
// refusal: such files worked before this check existed, and a Kubernetes
// secret volume is 0644 unless defaultMode says otherwise.
func (c *cli) warnExposedSecretFiles(cfg *config.Config, check func(string) error) {
	for _, p := range secretFiles(cfg) {
		var ee *fileperm.ExposedError
		if err := check(p); errors.As(err, &ee) {
			fmt.Fprintf(c.errOut, "upsproxy: warning: secret file %v\n", ee)
		}
	}
}
