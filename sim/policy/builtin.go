package policy

import (
	"encoding/json"
	"fmt"

	"github.com/gitopsim/gitopsim/sim/policy/engine"
)

// builtInDefinitionFiles returns the built-in definitions as they are
// published ({properties, id, name}): the Flux v1 GitOps built-ins that
// the engine package embeds, copied from Azure/azure-policy.
func builtInDefinitionFiles() ([][]byte, error) {
	var out [][]byte
	for _, raw := range engine.BuiltIns() {
		out = append(out, raw)
	}
	return out, nil
}

// loadBuiltIns parses the built-in definitions.
func loadBuiltIns() ([]*definition, error) {
	files, err := builtInDefinitionFiles()
	if err != nil {
		return nil, fmt.Errorf("built-in definitions: %w", err)
	}
	var defs []*definition
	for _, b := range files {
		d := &definition{}
		if err := json.Unmarshal(b, d); err != nil {
			return nil, fmt.Errorf("built-in definition: %w", err)
		}
		if err := d.parse(); err != nil {
			return nil, fmt.Errorf("built-in definition %s: %w", d.Name, err)
		}
		defs = append(defs, d)
	}
	return defs, nil
}
