package arm

// api-versions accepted per resource provider. Lists are lower-case and
// sorted; a request with any other version gets 400
// InvalidApiVersionParameter listing these.
var (
	// sourceControlConfigurations: every version that a tag of the spec's
	// readme publishes for the type (specification/kubernetesconfiguration/
	// resource-manager/Microsoft.KubernetesConfiguration/legacy/readme.md
	// and sourceControlConfigurations/readme.md). Folders that no tag
	// names were never published: 2021-10-01-preview (superseded by
	// 2021-11-01-preview), 2022-04-01, and 2022-01-15-preview, whose tag
	// takes the type from 2022-01-01-preview. The schema is the same in
	// all of them; configDialect has what their answers differ in.
	configVersions = []string{
		"2019-11-01-preview", "2020-07-01-preview", "2020-10-01-preview", "2021-03-01",
		"2021-05-01-preview", "2021-11-01-preview", "2022-01-01-preview",
		"2022-03-01", "2022-07-01", "2022-11-01", "2023-05-01", "2024-11-01",
	}
	// connectedClusters (spec §2.4).
	connectedClusterVersions = []string{
		"2020-01-01-preview", "2021-03-01", "2021-04-01-preview", "2021-10-01", "2022-05-01-preview",
		"2022-10-01-preview", "2023-11-01-preview", "2024-01-01", "2024-02-01-preview",
		"2024-06-01-preview", "2024-07-01-preview", "2024-07-15-preview", "2024-12-01-preview",
		"2025-08-01-preview", "2025-12-01-preview", "2026-02-01-preview", "2026-03-01", "2026-05-01",
	}
	// managedClusters: the minimal AKS parent accepts the GA versions
	// clients commonly pin.
	managedClusterVersions = []string{
		"2021-03-01", "2021-05-01", "2022-01-01", "2022-04-01", "2022-09-01", "2023-01-01",
		"2023-05-01", "2023-08-01", "2024-01-01", "2024-05-01", "2024-09-01", "2025-01-01",
	}
	// Microsoft.Resources: resource groups and provider registration.
	resourceVersions = []string{
		"2016-09-01", "2017-05-10", "2018-05-01", "2019-05-01", "2019-05-10", "2019-07-01",
		"2019-08-01", "2019-10-01", "2020-06-01", "2020-08-01", "2020-10-01", "2021-01-01",
		"2021-04-01", "2022-09-01", "2023-07-01", "2024-03-01", "2024-07-01", "2024-11-01", "2025-01-01",
	}
	// Subscriptions (Microsoft.Resources/subscriptions reads).
	subscriptionVersions = []string{
		"2016-06-01", "2018-06-01", "2019-06-01", "2019-11-01", "2020-01-01", "2021-01-01", "2022-12-01",
	}
	// /metadata/endpoints, as az asks it (spec §6.2).
	metadataVersions = []string{"2015-01-01", "2018-01-01", "2019-05-01", "2020-06-01", "2022-09-01"}
)
