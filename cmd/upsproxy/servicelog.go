package main

import (
	"fmt"
	"io"

	"gopkg.in/natefinch/lumberjack.v2"
)

// The Windows service writes its JSON log to a file of its own (no
// journald there). It is rotated so that months of access lines cannot
// fill the disk: at serviceLogMaxMB the file is renamed with the time
// (upsproxy-2026-11-30T12-00-00.000.log, local time) and a new one begun;
// the newest serviceLogBackups renamed files are kept, the older deleted.
// lumberjack (a well-kept library) does the rotating.
const (
	serviceLogMaxMB   = 50
	serviceLogBackups = 5
)

// openServiceLog opens path for the service's log, rotated at maxMB
// megabytes keeping backups old files. An existing file is appended to
// (one lumberjack cannot open is rotated away); a new one gets mode 0600.
// It is opened at once, so that a log that cannot be written at all (its
// directory cannot be made) fails the start rather than the first line.
func openServiceLog(path string, maxMB, backups int) (io.WriteCloser, error) {
	l := &lumberjack.Logger{Filename: path, MaxSize: maxMB, MaxBackups: backups, LocalTime: true}
	if _, err := l.Write(nil); err != nil {
		return nil, fmt.Errorf("open the log file: %w", err)
	}
	return l, nil
}
