package upssim

import (
	"strings"
	"testing"
	"time"
)

func TestParseFault_CommandLineSpecs(t *testing.T) {
	cases := []struct {
		spec    string
		want    Fault
		wantErr string
	}{
		{spec: "refresh:503", want: Fault{Endpoint: "refresh", Status: 503}},
		{spec: "token:429,times=2", want: Fault{Endpoint: "token", Status: 429, Times: 2}},
		{spec: "api:delay=3s", want: Fault{Endpoint: "api", Delay: 3 * time.Second}},
		{spec: "refresh:html", want: Fault{Endpoint: "refresh", Status: 503, ContentType: "text/html"}},
		{spec: "api:500,delay=1s", want: Fault{Endpoint: "api", Status: 500, Delay: time.Second}},
		{spec: "ship:503", wantErr: "unknown endpoint"},
		{spec: "refresh", wantErr: "ENDPOINT:OPTION"},
		{spec: "refresh:", wantErr: "ENDPOINT:OPTION"},
		{spec: "refresh:99", wantErr: "unknown option"},
		{spec: "api:delay=forever", wantErr: "delay"},
		{spec: "api:times=0", wantErr: "times"},
		{spec: "api:times=3", wantErr: "give a status"},
		{spec: "api:colour=red", wantErr: "unknown option"},
	}
	for _, c := range cases {
		t.Run(c.spec, func(t *testing.T) {
			got, err := ParseFault(c.spec)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.Body = ""
			if got != c.want {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func FuzzParseFault(f *testing.F) {
	for _, s := range []string{"refresh:503", "token:429,times=2", "api:delay=3s", "refresh:html", "x", "api:,,,", "api:delay=-1s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		ft, err := ParseFault(spec)
		if err == nil && ft.Status == 0 && ft.Delay == 0 {
			t.Fatalf("%q parsed to a fault that does nothing", spec)
		}
	})
}
