package upssim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseFault reads a fault as written on the sandbox command line:
//
//	ENDPOINT:OPTION[,OPTION...]
//
// ENDPOINT is token, refresh, api or authorize. OPTIONs: a status code
// ("503"), "html" (answer with an HTML error page, 503 unless a status is
// given), "delay=DURATION", "times=N". Examples: "refresh:503",
// "token:429,times=2", "api:delay=3s", "refresh:html".
func ParseFault(spec string) (Fault, error) {
	endpoint, opts, ok := strings.Cut(strings.TrimSpace(spec), ":")
	if !ok || opts == "" {
		return Fault{}, fmt.Errorf("fault %q: want ENDPOINT:OPTION[,OPTION...], e.g. refresh:503 or api:delay=2s", spec)
	}
	f := Fault{Endpoint: endpoint}
	switch endpoint {
	case EndpointAuthorize, EndpointToken, EndpointRefresh, EndpointAPI:
	default:
		return Fault{}, fmt.Errorf("fault %q: unknown endpoint %q (want token, refresh, api or authorize)", spec, endpoint)
	}
	html := false
	for _, opt := range strings.Split(opts, ",") {
		k, v, hasValue := strings.Cut(strings.TrimSpace(opt), "=")
		switch {
		case k == "html" && !hasValue:
			html = true
		case k == "delay" && hasValue:
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 || d > 10*time.Minute {
				return Fault{}, fmt.Errorf("fault %q: delay must be a duration between 0 and 10m, not %q", spec, v)
			}
			f.Delay = d
		case k == "times" && hasValue:
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return Fault{}, fmt.Errorf("fault %q: times must be a positive number, not %q", spec, v)
			}
			f.Times = n
		case !hasValue:
			n, err := strconv.Atoi(k)
			if err != nil || n < 200 || n > 599 {
				return Fault{}, fmt.Errorf("fault %q: unknown option %q (a status 200-599, html, delay=D or times=N)", spec, k)
			}
			f.Status = n
		default:
			return Fault{}, fmt.Errorf("fault %q: unknown option %q", spec, opt)
		}
	}
	if html {
		if f.Status == 0 {
			f.Status = 503
		}
		f.ContentType = "text/html"
		f.Body = "<html><head><title>Service Unavailable</title></head><body><h1>Service Unavailable</h1></body></html>"
	}
	if f.Status == 0 && f.Delay == 0 {
		return Fault{}, fmt.Errorf("fault %q: give a status, html or a delay", spec)
	}
	return f, nil
}
