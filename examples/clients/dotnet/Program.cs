// Rates a shipment through upsproxy from .NET (8 or later), in either mode:
//
//   dotnet run -- forward   HTTPS through the proxy (HttpClientHandler.Proxy),
//                           trusting upsproxy's CA for this client only
//   dotnet run -- base      upsproxy as the UPS base URL
//
// Settings (environment): UPSPROXY_URL (default http://127.0.0.1:8080),
// UPSPROXY_CA (default ca.pem), UPSPROXY_CARRIER (sent as X-Upsproxy-Carrier),
// UPSPROXY_USER and UPSPROXY_PASSWORD (proxy credentials, when upsproxy.hcl
// has client blocks), UPS_URL (default https://wwwcie.ups.com, UPS's Test
// host), BODY (default ../../rate-request.json), UPS_CLIENT_ID and
// UPS_CLIENT_SECRET (when set, the program first fetches its OAuth token
// from UPS's token URL, as software written for UPS's OAuth does; upsproxy
// answers that itself).
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;

const string RatePath = "/api/rating/v2409/Rate";
const string TokenPath = "/security/v1/oauth/token";

string mode = args.Length > 0 ? args[0] : "";
string proxyUrl = Env("UPSPROXY_URL", "http://127.0.0.1:8080");
string caPath = Env("UPSPROXY_CA", "ca.pem");
string upsUrl = Env("UPS_URL", "https://wwwcie.ups.com");
string bodyPath = Env("BODY", Path.Combine("..", "..", "rate-request.json"));
string carrier = Env("UPSPROXY_CARRIER", "");
string user = Env("UPSPROXY_USER", "");
string password = Env("UPSPROXY_PASSWORD", "");
string clientId = Env("UPS_CLIENT_ID", "");
string clientSecret = Env("UPS_CLIENT_SECRET", "");

HttpClientHandler handler;
Uri target;
switch (mode)
{
    case "forward":
        var ca = X509Certificate2.CreateFromPem(File.ReadAllText(caPath));
        handler = new HttpClientHandler
        {
            // .NET answers upsproxy's 407 (Proxy-Authenticate: Basic) with
            // these credentials, on the CONNECT too.
            Proxy = new WebProxy(proxyUrl)
            {
                Credentials = user.Length > 0 ? new NetworkCredential(user, password) : null,
            },
            UseProxy = true,
            ServerCertificateCustomValidationCallback = (_, cert, _, errors) => IssuedByUpsproxy(ca, cert, errors),
        };
        target = new Uri(new Uri(upsUrl), RatePath);
        break;
    case "base":
        // upsproxy is the server: no proxy, whatever the system settings say.
        handler = new HttpClientHandler { UseProxy = false };
        target = new Uri(new Uri(proxyUrl), RatePath);
        break;
    default:
        Console.Error.WriteLine("usage: dotnet run -- forward|base   (settings: see the top of Program.cs)");
        return 2;
}

using var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(60) };
if (clientId.Length > 0)
{
    // UPS's client-credentials flow, unchanged: Basic client id and secret,
    // a form body, the access_token of the JSON answer as the bearer.
    using var tokenRequest = new HttpRequestMessage(HttpMethod.Post, new Uri(target, TokenPath))
    {
        Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }),
    };
    tokenRequest.Headers.Authorization = new AuthenticationHeaderValue("Basic",
        Convert.ToBase64String(Encoding.UTF8.GetBytes($"{clientId}:{clientSecret}")));
    using var tokenResponse = await client.SendAsync(tokenRequest);
    var tokenJson = await tokenResponse.Content.ReadAsStringAsync();
    if (!tokenResponse.IsSuccessStatusCode)
    {
        Console.Error.WriteLine($"token request failed: HTTP {(int)tokenResponse.StatusCode} {tokenJson}");
        return 1;
    }
    var accessToken = JsonDocument.Parse(tokenJson).RootElement.GetProperty("access_token").GetString();
    client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
}
using var request = new HttpRequestMessage(HttpMethod.Post, target)
{
    Content = new StringContent(File.ReadAllText(bodyPath), Encoding.UTF8, "application/json"),
};
if (carrier.Length > 0)
{
    request.Headers.Add("X-Upsproxy-Carrier", carrier);
}
if (mode == "base" && user.Length > 0)
{
    // HttpClient sends proxy credentials only to a proxy; in base-URL mode
    // upsproxy is the server, so the header is set by hand.
    var basic = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}"));
    request.Headers.TryAddWithoutValidation("Proxy-Authorization", "Basic " + basic);
}

using var response = await client.SendAsync(request);
if (response.Headers.TryGetValues("X-Upsproxy-Error", out var codes))
{
    Console.Error.WriteLine($"upsproxy refused the call: {string.Join(", ", codes)} (HTTP {(int)response.StatusCode})");
}
else if (!response.IsSuccessStatusCode)
{
    Console.Error.WriteLine($"UPS answered HTTP {(int)response.StatusCode}");
}
Console.WriteLine(await response.Content.ReadAsStringAsync());
return response.IsSuccessStatusCode ? 0 : 1;

// IssuedByUpsproxy accepts a server certificate that chains to upsproxy's CA
// and names the host that was asked for. It replaces only the trust anchor:
// not "accept everything", and not the machine-wide store either, so nothing
// else on the machine starts trusting upsproxy's CA.
static bool IssuedByUpsproxy(X509Certificate2 ca, X509Certificate2? cert, SslPolicyErrors errors)
{
    if (cert is null)
    {
        return false;
    }
    // The host-name check is independent of the trust anchor: keep it.
    if ((errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0)
    {
        return false;
    }
    using var chain = new X509Chain();
    chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
    chain.ChainPolicy.CustomTrustStore.Add(ca);
    // upsproxy's short-lived leaf certificates carry no revocation endpoints.
    chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
    return chain.Build(cert);
}

static string Env(string name, string fallback) =>
    Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : fallback;
