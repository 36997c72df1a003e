// Command release packs the directories `make release` built into archives
// (.zip for Windows, .tar.gz elsewhere) and writes SHA256SUMS next to them.
// Archives are reproducible: entries sorted, one fixed modification time
// (-mtime, the commit time), no owner names. Standard library only, so a
// fresh machine with Go needs nothing else (no zip, no GoReleaser, no
// network).
//
//	go run ./tools/release -mtime 1700000000 dist/upsproxy_v1_linux_amd64 dist/upsproxy_v1_windows_amd64
package main

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

func main() {
	mtime := flag.Int64("mtime", 0, "modification time of every entry (Unix seconds; the commit time)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: release [-mtime SECONDS] DIR...")
		os.Exit(2)
	}
	archives, err := pack(flag.Args(), time.Unix(*mtime, 0).UTC())
	if err == nil {
		err = writeSums(filepath.Join(filepath.Dir(flag.Arg(0)), "SHA256SUMS"), archives)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

// pack archives each directory into DIR.zip (a name containing _windows_)
// or DIR.tar.gz, the directory's name as the top folder, and returns the
// archive paths.
func pack(dirs []string, mtime time.Time) ([]string, error) {
	var out []string
	for _, dir := range dirs {
		dir = filepath.Clean(dir)
		files, err := listFiles(dir)
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("%s is empty", dir)
		}
		archive := dir + ".tar.gz"
		write := writeTarGz
		if strings.Contains(filepath.Base(dir), "_windows_") {
			archive, write = dir+".zip", writeZip
		}
		if err := write(archive, dir, files, mtime); err != nil {
			return nil, fmt.Errorf("%s: %w", archive, err)
		}
		out = append(out, archive)
	}
	return out, nil
}

// listFiles returns the regular files under dir, relative, sorted.
func listFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		} else if !d.IsDir() {
			return fmt.Errorf("%s: not a regular file", p)
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

// modeOf is 0755 for the binaries, 0644 for everything else.
func modeOf(name string) fs.FileMode {
	if base := filepath.Base(name); base == "upsproxy" || strings.HasSuffix(base, ".exe") {
		return 0o755
	}
	return 0o644
}

func writeTarGz(archive, dir string, files []string, mtime time.Time) (err error) {
	f, err := os.Create(archive)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	gz, err := gzip.NewWriterLevel(f, gzip.BestCompression)
	if err != nil {
		return err
	}
	gz.ModTime = mtime
	tw := tar.NewWriter(gz)
	top := filepath.Base(dir)
	for _, name := range files {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: top + "/" + name, Mode: int64(modeOf(name)), Size: int64(len(data)),
			ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func writeZip(archive, dir string, files []string, mtime time.Time) (err error) {
	f, err := os.Create(archive)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	zw := zip.NewWriter(f)
	top := filepath.Base(dir)
	for _, name := range files {
		hdr := &zip.FileHeader{Name: top + "/" + name, Method: zip.Deflate, Modified: mtime}
		hdr.SetMode(modeOf(name))
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		src, err := os.Open(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			return err
		}
		_, err = io.Copy(w, src)
		src.Close()
		if err != nil {
			return err
		}
	}
	return zw.Close()
}

// writeSums writes "sha256  name" lines, as sha256sum does, so
// `sha256sum -c SHA256SUMS` (or Get-FileHash on Windows) checks them.
func writeSums(path string, archives []string) error {
	var b strings.Builder
	for _, a := range archives {
		f, err := os.Open(a)
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(h.Sum(nil)), filepath.Base(a))
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
