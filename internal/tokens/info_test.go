package tokens

import (
	"testing"
	"time"
)

func TestHumanize_ShowsDaysForLongLifetimesAndSecondsForShortOnes(t *testing.T) {
	for d, want := range map[time.Duration]string{
		1439*time.Hour + 59*time.Minute: "59d23h",
		72 * time.Hour:                  "3d0h",
		3*time.Hour + 59*time.Minute + 58*time.Second + 300*time.Millisecond: "3h59m58s",
		0: "0s",
	} {
		if got := Humanize(d); got != want {
			t.Errorf("Humanize(%s) = %q, want %q", d, got, want)
		}
	}
}
