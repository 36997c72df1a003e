//go:build !windows

package main

import "context"

func (c *cli) notWindows() error { return &exitCodeError{code: exitError, msg: noServiceHere} }

func (c *cli) serviceInstall(serviceOptions) error              { return c.notWindows() }
func (c *cli) serviceRun(context.Context, serviceOptions) error { return c.notWindows() }
func (c *cli) serviceUninstall() error                          { return c.notWindows() }
func (c *cli) serviceStart() error                              { return c.notWindows() }
func (c *cli) serviceStop() error                               { return c.notWindows() }
func (c *cli) serviceStatus() error                             { return c.notWindows() }
