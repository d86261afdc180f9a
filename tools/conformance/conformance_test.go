// Package conformance runs the upstream Gateway API conformance suite, unmodified, configured
// by the suite's own command-line flags (sigs.k8s.io/gateway-api/conformance/utils/flags).
// scripts/conformance builds it into a test binary, brings up the test cluster with Gantry
// installed, and passes those flags.
package conformance

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/gateway-api/conformance"
	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"
	"sigs.k8s.io/yaml"
)

func TestConformance(t *testing.T) {
	// Cleanups run last-added first: this one, added before the suite adds the one that
	// writes the report, runs after the report is on disk.
	if report := flag.Lookup("report-output").Value.String(); report != "" {
		t.Cleanup(func() { fmt.Println(summary(report)) })
	}
	conformance.RunConformance(t)
}

// summary is one line per profile of the report at path, for scripts/conformance to show last:
// "summary: GATEWAY-HTTP core 38/40 passed (2 failed, 0 skipped); extended 5/6 passed
// (1 failed, 0 skipped) over 2 features: A,B".
func summary(path string) string {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "summary: no report: the suite stopped before writing one"
	} else if err != nil {
		return fmt.Sprintf("summary: no report: %v", err)
	}
	var report confv1.ConformanceReport
	if err := yaml.Unmarshal(raw, &report); err != nil {
		return fmt.Sprintf("summary: unreadable report %s: %v", path, err)
	}
	if len(report.ProfileReports) == 0 {
		return "summary: no test ran (the suite's setup failed)"
	}
	var lines []string
	for _, p := range report.ProfileReports {
		line := fmt.Sprintf("summary: %s core %s", p.Name, counts(p.Core.Statistics))
		if e := p.Extended; e != nil {
			line += fmt.Sprintf("; extended %s over %d features: %s",
				counts(e.Statistics), len(e.SupportedFeatures), strings.Join(e.SupportedFeatures, ","))
		} else {
			line += "; extended: no tests ran"
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

func counts(s confv1.Statistics) string {
	return fmt.Sprintf("%d/%d passed (%d failed, %d skipped)", s.Passed, s.Passed+s.Failed+s.Skipped, s.Failed, s.Skipped)
}
