package doctor

import (
	"fmt"
	"io"
	"runtime/debug"
)

// Version writes the build info Go records in the binary (module version,
// VCS revision and time, toolchain) and the libtorch and gotch it was
// built against. It touches no libtorch, so `clipcap version` stays light.
func Version(w io.Writer) error {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return fmt.Errorf("this binary carries no build info")
	}
	fmt.Fprintln(w, versionLine(info))
	if BuildLibtorch != "" {
		fmt.Fprintf(w, "built against %s; gotch %s\n", BuildLibtorch, BuildGotch)
	}
	return nil
}

func versionLine(info *debug.BuildInfo) string {
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	rev := settings["vcs.revision"]
	if rev == "" {
		rev = "unknown revision"
	} else if settings["vcs.modified"] == "true" {
		rev += " (modified)"
	}
	return fmt.Sprintf("clipcap %s, %s %s, %s %s/%s", info.Main.Version, rev, settings["vcs.time"], info.GoVersion, settings["GOOS"], settings["GOARCH"])
}
