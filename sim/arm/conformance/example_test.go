package conformance

import "fmt"

// A configuration as gitopsim returned it before issue 15: the zone-less
// lastConfigApplied breaks the date-time format, while messageLevel "3" is
// only noted, since the enum is modelAsString.
func ExampleValidate() {
	spec, _ := SourceControlConfigurations("2021-03-01")
	doc := `{
	  "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/c/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/cfg",
	  "name": "cfg",
	  "type": "Microsoft.KubernetesConfiguration/sourceControlConfigurations",
	  "properties": {
	    "operatorType": "Flux",
	    "privateLinkState": "Disabled",
	    "complianceStatus": {"complianceState": "Pending", "lastConfigApplied": "0001-01-01T00:00:00", "messageLevel": "3"}
	  }
	}`
	r := Validate([]byte(doc), spec.Resource)
	for _, f := range r.Violations {
		fmt.Println(f.Pointer, f.Rule)
	}
	for _, f := range r.Notes {
		fmt.Println("note:", f.Pointer, f.Rule)
	}
	// Output:
	// /properties/complianceStatus/lastConfigApplied format
	// /properties/privateLinkState unknown-member
	// note: /properties/complianceStatus/messageLevel enum
}
