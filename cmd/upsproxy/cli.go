package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes. token check uses exitWarning/exitCritical as monitoring
// plugins do.
const (
	exitOK       = 0
	exitError    = 1
	exitWarning  = 1
	exitCritical = 2
)

// exitCodeError carries a specific exit code out of a command. An empty
// message means the command already printed what needs saying.
type exitCodeError struct {
	code int
	msg  string
}

func (e *exitCodeError) Error() string { return e.msg }

// cli holds what every command shares: its streams and the config path.
type cli struct {
	stdin      io.Reader
	out        io.Writer
	errOut     io.Writer
	configPath string
	getenv     func(string) string
	// controls, when set (the Windows service), stops or reloads serve
	// as SIGTERM and SIGHUP do.
	controls <-chan control
	// ready, when set (the Windows service), is called once serve's
	// listeners are bound and its start-up work that can fail is done.
	ready func()
}

// run executes the command line and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{stdin: stdin, out: stdout, errOut: stderr, getenv: os.Getenv}
	root := c.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ce *exitCodeError
	if errors.As(err, &ce) {
		if ce.msg != "" {
			fmt.Fprintf(stderr, "upsproxy: %s\n", ce.msg)
		}
		return ce.code
	}
	fmt.Fprintf(stderr, "upsproxy: %v\n", err)
	return exitError
}

func (c *cli) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "upsproxy",
		Short:         "Forward proxy that attaches UPS OAuth tokens kept in Vault",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&c.configPath, "config", "", "config file (default $UPSPROXY_CONFIG, then ./upsproxy.hcl)")
	root.AddCommand(
		c.serveCmd(),
		c.loginCmd(),
		c.tokenCmd(),
		c.configCmd(),
		c.caCmd(),
		c.sandboxCmd(),
		c.notifyCmd(),
		c.serviceCmd(),
		c.versionCmd(),
	)
	return root
}

// configFile resolves --config, then $UPSPROXY_CONFIG, then ./upsproxy.hcl.
func (c *cli) configFile() string {
	if c.configPath != "" {
		return c.configPath
	}
	if p := c.getenv("UPSPROXY_CONFIG"); p != "" {
		return p
	}
	return "upsproxy.hcl"
}
