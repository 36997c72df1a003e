package main

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"
)

// browserCommand is the program that opens url in the desktop's default
// browser on goos. The URL is passed as one argument, never through a
// shell, so its '&' cannot split the command.
func browserCommand(goos, url string) (name string, args []string) {
	switch goos {
	case "darwin":
		return "open", []string{url}
	case "windows":
		// Not "cmd /c start": cmd.exe re-parses '&' in the URL.
		return "rundll32", []string{"url.dll,FileProtocolHandler", url}
	default: // linux, the BSDs, illumos...
		return "xdg-open", []string{url}
	}
}

// openBrowser starts the desktop's browser on url without waiting for it:
// xdg-open may hand over to a browser process that lives on. getenv tells
// whether a graphical session exists, so that an admin on an SSH session
// gets the URL instead of a browser opening on someone else's screen or a
// text-mode browser taking over the terminal.
func openBrowser(url string, getenv func(string) string) error {
	goos := runtime.GOOS
	if goos != "darwin" && goos != "windows" && getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
		return errors.New("no graphical session (neither DISPLAY nor WAYLAND_DISPLAY is set)")
	}
	name, args := browserCommand(goos, url)
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	// Reap it whenever it ends; its exit status says nothing reliable
	// about whether a page opened.
	go func() { _ = cmd.Wait() }()
	return nil
}
