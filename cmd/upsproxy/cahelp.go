package main

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/upsproxy/upsproxy/internal/config"
)

// caInstallHelp is how to make clients trust the MITM CA and send UPS
// calls through upsproxy, per OS and runtime. {CERT} is the CA
// certificate's path, {PROXY} the proxy's host:port as clients reach it.
const caInstallHelp = `How to trust the upsproxy MITM CA ({CERT}) and use the proxy ({PROXY})
for HTTPS forward-proxy mode. The certificate is public; never copy
ca-key.pem anywhere. It is name-constrained to onlinetools.ups.com and
wwwcie.ups.com, so even a machine-wide trust lets it vouch for nothing else.
upsproxy serves only those two hosts: send nothing else through it.

Windows (elevated prompt)
  Trust it machine-wide (.NET Framework, WinHTTP, WinINet, Edge/Chrome, PowerShell):
    certutil -addstore -f Root "{CERT}"
    certutil -verifystore Root "upsproxy MITM CA"      (check)
    certutil -delstore Root "upsproxy MITM CA"         (undo)
  Proxy for WinHTTP (Windows services and programs that use the machine proxy):
    netsh winhttp set proxy proxy-server="{PROXY}" bypass-list="<local>"
    netsh winhttp show proxy                           (check)
    netsh winhttp reset proxy                          (undo)
    This sends ALL WinHTTP traffic of the machine (Windows Update included) to
    upsproxy, which refuses every host but UPS's: use it only where that is
    acceptable, else add the other hosts to bypass-list ("<local>;*.microsoft.com;...")
    or prefer the per-program settings below.
  Proxy for WinINet (the user's Internet Options, used by most desktop programs):
    Settings > Network & Internet > Proxy > Manual proxy setup: {PROXY}, and list
    the hosts that must not use it in "Use the proxy server except for".
    Copy it to WinHTTP with: netsh winhttp import proxy source=ie
  .NET Framework program (in its ProgramName.exe.config, next to the .exe):
    <configuration>
      <system.net>
        <defaultProxy enabled="true">
          <proxy usesystemdefault="False" proxyaddress="http://{PROXY}" bypassonlocal="True" />
          <bypasslist>
            <!-- regular expressions of hosts that must not use upsproxy -->
            <add address="updates\.example\.com" />
          </bypasslist>
        </defaultProxy>
      </system.net>
    </configuration>
  .NET (Core/5+) program: HTTPS_PROXY=http://{PROXY} in its environment, or
    the WinINet setting above (HttpClient's default proxy on Windows).

Java (any OS; -cacerts needs Java 9+, the default store password is changeit)
    keytool -importcert -cacerts -alias upsproxy -file "{CERT}" -storepass changeit -noprompt
    Java 8: keytool -importcert -keystore "$JAVA_HOME/jre/lib/security/cacerts" -alias upsproxy -file "{CERT}" -storepass changeit -noprompt
    keytool -delete -cacerts -alias upsproxy -storepass changeit   (undo)
  Proxy: java -Dhttps.proxyHost={HOST} -Dhttps.proxyPort={PORT} -Dhttp.nonProxyHosts="localhost|*.example.com" ...
  With proxy authentication add -Djdk.http.auth.tunneling.disabledSchemes="".

macOS
    sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain "{CERT}"
    sudo security delete-certificate -c "upsproxy MITM CA" /Library/Keychains/System.keychain   (undo)

Linux
  Debian/Ubuntu (the file name must end in .crt):
    sudo cp "{CERT}" /usr/local/share/ca-certificates/upsproxy.crt && sudo update-ca-certificates
  RHEL/Fedora/Rocky/Alma:
    sudo cp "{CERT}" /etc/pki/ca-trust/source/anchors/upsproxy.pem && sudo update-ca-trust

Runtimes that do not read the system store
  Python requests (the file replaces certifi's bundle, so add the CA to a copy):
    cat "$(python3 -m certifi)" "{CERT}" > upsproxy-bundle.pem
    REQUESTS_CA_BUNDLE=$PWD/upsproxy-bundle.pem HTTPS_PROXY=http://{PROXY} python3 app.py
  Node.js (added to the built-in roots, read at start):
    NODE_EXTRA_CA_CERTS="{CERT}" HTTPS_PROXY=http://{PROXY} NODE_USE_ENV_PROXY=1 node app.js
    (NODE_USE_ENV_PROXY needs Node 24+; older code passes an agent such as https-proxy-agent)
  curl:
    curl --cacert "{CERT}" --proxy http://{PROXY} https://wwwcie.ups.com/...

Check any of them: a request through the proxy to https://wwwcie.ups.com/
must succeed without certificate errors; "upsproxy token status" shows the
carrier's token, and the proxy's log has one access line per request.
`

// writeCAInstallHelp prints caInstallHelp for a certificate path and a
// proxy address.
func writeCAInstallHelp(w io.Writer, certPath, proxyAddr string) error {
	host, port, err := net.SplitHostPort(proxyAddr)
	if err != nil {
		return fmt.Errorf("--proxy %q: want host:port (as clients reach the proxy): %w", proxyAddr, err)
	}
	r := strings.NewReplacer("{CERT}", certPath, "{PROXY}", proxyAddr, "{HOST}", host, "{PORT}", port)
	_, err = io.WriteString(w, r.Replace(caInstallHelp))
	return err
}

func (c *cli) caInstallHelpCmd() *cobra.Command {
	var cert, proxyAddr string
	cmd := &cobra.Command{
		Use:   "install-help",
		Short: "Print how to trust the MITM CA and set the proxy, per OS and runtime",
		Long: `Print the exact commands that make clients trust the MITM CA and send
their UPS calls through upsproxy: Windows certificate store, WinHTTP/WinINet
and .NET Framework proxy settings, Java keystores, macOS keychain,
Debian/RHEL trust stores, Python requests and Node.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cert == "" {
				cert = "ca.pem"
				// The config's CA, when there is one: the commands then
				// name the right file.
				if cfg, _, diags := config.Load(c.configFile()); !diags.HasErrors() && cfg != nil && cfg.MITM != nil {
					cert = cfg.MITM.CACert
				}
			}
			if abs, err := filepath.Abs(cert); err == nil {
				cert = abs
			}
			return writeCAInstallHelp(c.out, cert, proxyAddr)
		},
	}
	cmd.Flags().StringVar(&cert, "cert", "", "CA certificate (default: the config's mitm.ca_cert, else ./ca.pem)")
	cmd.Flags().StringVar(&proxyAddr, "proxy", "PROXY-HOST:8080", "the proxy's host:port as clients reach it")
	return cmd
}
