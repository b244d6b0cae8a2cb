package arm

import (
	"strings"
	"time"
)

// configDialect is how one api-version of sourceControlConfigurations
// writes the resource. The schema is the same in every published version
// (kubernetesconfiguration.json, 2019-11-01-preview to 2024-11-01); what
// differs is the response model of the first preview, the error shape of
// the versions that predate common-types v2, and the values the service
// wrote in the preview era.
//
// The values are taken from recordings of the real service:
//   - on 2022-03-01, a pending configuration has messageLevel
//     "Information" and lastConfigApplied "0001-01-01T00:00:00+00:00";
//   - in the 2019-11-01-preview era the same state was messageLevel "3"
//     and "0001-01-01T00:00:00", without a zone.
//
// Versions before the first GA (2021-03-01) answer as the preview era,
// later versions as the recording of 2022-03-01. Values that the
// recordings agree on (operatorType "Flux", trimmed operatorParams,
// sshKnownHostsContents null when unset, the 404 of a missing
// configuration) are stored or written the same way in every version.
type configDialect struct {
	// previewEra: pending messageLevel "3", times without a zone.
	previewEra bool
	// createForm: 2019-11-01-preview's separate request model
	// (SourceControlConfigurationForCreate); its response model has no
	// configurationProtectedSettings but creationTime and
	// lastModifiedTime.
	createForm bool
	// localErrors: the swagger's own ErrorResponse, {error: {code,
	// message}}, in every version up to 2021-03-01; common-types v2 from
	// 2021-05-01-preview on.
	localErrors bool
}

// configDialectOf returns the dialect of a configuration api-version
// (already validated against configVersions).
func configDialectOf(apiVersion string) configDialect {
	v := strings.ToLower(apiVersion)
	return configDialect{
		previewEra:  v < "2021-03-01",
		createForm:  v == "2019-11-01-preview",
		localErrors: v <= "2021-03-01",
	}
}

// pendingLevel is messageLevel before the agent's first report.
func (d configDialect) pendingLevel() string {
	if d.previewEra {
		return "3"
	}
	return "Information"
}

// timestamp writes a time as the service's .NET serializer does: an
// explicit offset (DateTimeOffset), or, in the preview era, a
// DateTime without a zone.
func (d configDialect) timestamp(t time.Time) string {
	if d.previewEra {
		return t.UTC().Format("2006-01-02T15:04:05.9999999")
	}
	// Go writes "+00:00" for UTC with the -07:00 layout, where Z07:00
	// would give "Z".
	return t.UTC().Format("2006-01-02T15:04:05.9999999-07:00")
}

// level writes a configuration's messageLevel in this dialect. The
// pending state a PUT leaves is stored as today's service writes it,
// "Information" (older state files hold "3"); the preview era wrote "3".
func (d configDialect) level(c Compliance) string {
	if c.State == CompliancePending && c.LastConfigApplied.IsZero() && (c.Level == "Information" || c.Level == "3") {
		return d.pendingLevel()
	}
	return c.Level
}

// lastConfigApplied writes complianceStatus.lastConfigApplied: year 1
// until the agent's first report.
func (d configDialect) lastConfigApplied(t time.Time) string {
	if t.IsZero() {
		t = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return d.timestamp(t)
}

// configErrors writes the errors of a configuration handler in the shape
// of the request's api-version. Errors raised before the provider sees
// the request (authentication, api-version) are ARM's own and keep the
// common shape.
func configErrors(h handler) handler {
	return func(c *call) *Error {
		e := h(c)
		if e != nil && configDialectOf(c.apiVersion).localErrors {
			e.local = true
		}
		return e
	}
}
