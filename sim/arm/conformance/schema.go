package conformance

import (
	"maps"
	"slices"
)

// Kind is the JSON type a schema requires (swagger's "type").
type Kind string

// The JSON types of swagger 2.0. The zero Kind accepts any value.
const (
	String  Kind = "string"
	Integer Kind = "integer"
	Number  Kind = "number"
	Boolean Kind = "boolean"
	Object  Kind = "object"
	Array   Kind = "array"
)

// Formats the validator checks (swagger's "format").
const (
	FormatDateTime = "date-time" // RFC 3339 date-time, with a zone
	FormatInt32    = "int32"
	FormatInt64    = "int64"
	FormatByte     = "byte"   // standard base64
	FormatURI      = "uri"    // an absolute URI
	FormatARMID    = "arm-id" // an ARM resource id
)

// Schema is one swagger schema, reduced to the keywords the validator
// checks. allOf and $ref are resolved when the Go data is written: a
// Schema holds every member of the definition it stands for.
type Schema struct {
	// Ref names the definition in the spec, as "<file>#/definitions/X",
	// for messages. Schemas that are parts of a definition leave it empty.
	Ref string
	// Kind is the JSON type; empty accepts any value.
	Kind Kind
	// Format is swagger's format; the validator checks those it knows.
	Format string
	// Properties are the members an object defines.
	Properties map[string]*Schema
	// Required lists the members an object must have.
	Required []string
	// AdditionalProperties is the schema of members not in Properties (the
	// values of a map). Nil means the definition has no other members, so
	// a response that carries one does not conform.
	AdditionalProperties *Schema
	// FreeForm marks an object whose members the spec leaves open
	// ("type": "object" and nothing else), such as ErrorAdditionalInfo.info.
	FreeForm bool
	// Items is the schema of an array's elements.
	Items *Schema
	// Enum lists the allowed string values.
	Enum []string
	// ModelAsString is x-ms-enum's modelAsString: values outside Enum are
	// legal (clients keep them as strings), so they are noted, not failed.
	ModelAsString bool
	// ReadOnly marks a member the server sets; a request's value for it
	// must be ignored. A read-only object makes everything in it read-only.
	ReadOnly bool
	// Nullable is x-nullable: the member may be JSON null.
	Nullable bool
}

// clone copies s one level deep: the Properties map is new, the schemas in
// it are shared.
func (s *Schema) clone() *Schema {
	c := *s
	c.Properties = maps.Clone(s.Properties)
	c.Required = slices.Clone(s.Required)
	c.Enum = slices.Clone(s.Enum)
	return &c
}

// ro returns a read-only copy of s.
func (s *Schema) ro() *Schema {
	c := s.clone()
	c.ReadOnly = true
	return c
}

// nullable returns a copy of s that may be null (x-nullable: true).
func (s *Schema) nullable() *Schema {
	c := s.clone()
	c.Nullable = true
	return c
}

// ref returns a copy of s that names its definition.
func (s *Schema) ref(r string) *Schema {
	c := s.clone()
	c.Ref = r
	return c
}

// with returns a copy of object schema s with props added or replaced.
func (s *Schema) with(props map[string]*Schema) *Schema {
	c := s.clone()
	if c.Properties == nil {
		c.Properties = map[string]*Schema{}
	}
	maps.Copy(c.Properties, props)
	return c
}

// without returns a copy of object schema s without the named members.
func (s *Schema) without(names ...string) *Schema {
	c := s.clone()
	for _, n := range names {
		delete(c.Properties, n)
		c.Required = slices.DeleteFunc(c.Required, func(r string) bool { return r == n })
	}
	return c
}

// require returns a copy of object schema s that also requires names.
func (s *Schema) require(names ...string) *Schema {
	c := s.clone()
	c.Required = append(c.Required, names...)
	return c
}

// Builders for the spec tables: short, so that a definition reads like the
// swagger it was written from.

func str() *Schema                  { return &Schema{Kind: String} }
func strFormat(f string) *Schema    { return &Schema{Kind: String, Format: f} }
func dateTime() *Schema             { return strFormat(FormatDateTime) }
func integer(f string) *Schema      { return &Schema{Kind: Integer, Format: f} }
func boolean() *Schema              { return &Schema{Kind: Boolean} }
func freeForm() *Schema             { return &Schema{Kind: Object, FreeForm: true} }
func arrayOf(items *Schema) *Schema { return &Schema{Kind: Array, Items: items} }
func mapOf(values *Schema) *Schema  { return &Schema{Kind: Object, AdditionalProperties: values} }

// enum is a string enum; modelAsString is x-ms-enum's flag.
func enum(modelAsString bool, values ...string) *Schema {
	return &Schema{Kind: String, Enum: values, ModelAsString: modelAsString}
}

// object is an object with the given members, of which required are
// required.
func object(props map[string]*Schema, required ...string) *Schema {
	if props == nil {
		props = map[string]*Schema{}
	}
	return &Schema{Kind: Object, Properties: props, Required: required}
}
