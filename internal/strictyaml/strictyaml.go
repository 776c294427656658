// Package strictyaml decodes a YAML (or JSON) document into a Go value
// strictly, reporting every problem with its field path: the one strict
// decoder of the agent's configuration (api/agent/v1alpha1.Decode) and of
// the inputs of `vipvs render` (package day0).
package strictyaml

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	yamlv2 "go.yaml.in/yaml/v2"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// Decode decodes one YAML (or JSON) document into v, a pointer to a struct,
// strictly. It is an error when
//   - the data is not one well-formed document holding a mapping,
//   - a mapping repeats a key,
//   - a key is not a field of v's type (by its JSON name; untagged embedded
//     structs are inlined), including a key that differs from one only in
//     case ("VRID" for "vrid"),
//   - a value has the wrong type: in particular a string field given an
//     unquoted number or boolean (`authPassword: 0123`, `name: yes`) is
//     rejected rather than silently converted, and an integer out of its
//     field's range. A duration (a struct of one time.Duration, as
//     metav1.Duration) must be a string time.ParseDuration accepts. A type
//     with its own UnmarshalJSON judges its value itself.
//
// Every unknown field and type mismatch is reported, each naming its field
// path, in a field.ErrorList returned as a utilerrors.Aggregate (see
// field.ErrorList.ToAggregate); the value of a field tagged
// datapolicy:"password" is never shown. A document that is not well-formed
// is reported as a plain error starting "parsing YAML: ". Decode neither
// defaults nor validates values.
func Decode(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("strictyaml: Decode needs a non-nil pointer, not %T", v)
	}
	if err := checkSingleDocument(data); err != nil {
		return err
	}
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return fmt.Errorf("parsing YAML: %w", err)
	}
	var raw any
	if err := json.Unmarshal(j, &raw); err != nil {
		return fmt.Errorf("parsing YAML: %w", err)
	}
	if _, ok := raw.(map[string]any); !ok {
		return errors.New("parsing YAML: the document must be a mapping of the format's fields")
	}
	if errs := checkShape(raw, rv.Type().Elem(), nil, false); len(errs) > 0 {
		return errs.ToAggregate()
	}
	// checkShape has checked every key and type, so this decode fails only
	// on a bug in checkShape or a value a type's UnmarshalJSON rejects;
	// DisallowUnknownFields is a second guard.
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decoding: %w", err)
	}
	return nil
}

var (
	durationType    = reflect.TypeFor[time.Duration]()
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
)

// isDuration reports whether t is a duration in its JSON form: a struct
// whose only field is an embedded or named time.Duration (metav1.Duration,
// agent.vipvs.io's Duration), read from a string.
func isDuration(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t.NumField() == 1 && t.Field(0).Type == durationType
}

// intRange returns the range of integer type t as float64s.
func intRange(t reflect.Type) (lo, hi float64) {
	bits := t.Bits()
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return 0, math.Exp2(float64(bits)) - 1
	}
	return -math.Exp2(float64(bits - 1)), math.Exp2(float64(bits-1)) - 1
}

// checkSingleDocument rejects a stream of several YAML documents: the YAML
// to JSON conversion would read the first and silently drop the rest.
func checkSingleDocument(data []byte) error {
	dec := yamlv2.NewDecoder(bytes.NewReader(data))
	docs := 0
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("parsing YAML: %w", err)
		}
		if v != nil {
			docs++
		}
		if docs > 1 {
			return errors.New("parsing YAML: found more than one document, want exactly one")
		}
	}
	if docs == 0 {
		return errors.New("parsing YAML: the document is empty")
	}
	return nil
}

// checkShape compares v, a value decoded from JSON into an any, with the Go
// type t that it will be decoded into. It reports keys that are not a
// field's exact JSON name and values of the wrong JSON type. A null value
// is accepted anywhere: it leaves the field unset.
//
// A field tagged datapolicy:"password" is secret: its value is never
// written into an error.
func checkShape(v any, t reflect.Type, p *field.Path, secret bool) field.ErrorList {
	if v == nil {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if isDuration(t) {
		s, ok := v.(string)
		if !ok {
			return field.ErrorList{typeError(p, v, `a duration string such as "1s" or "10ms"`, secret)}
		}
		if _, err := time.ParseDuration(s); err != nil {
			return field.ErrorList{field.Invalid(p, shown(s, secret), `must be a duration such as "1s", "10ms" or "1m30s"`)}
		}
		return nil
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) || t.Implements(jsonUnmarshaler) {
		// A type with its own JSON form (metav1.Time, a quantity): its
		// UnmarshalJSON judges the value.
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return field.ErrorList{typeError(p, v, "a mapping", secret)}
		}
		return checkStruct(m, t, p)
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return field.ErrorList{typeError(p, v, "a mapping", secret)}
		}
		var errs field.ErrorList
		for _, k := range slices.Sorted(maps.Keys(m)) {
			errs = append(errs, checkShape(m[k], t.Elem(), p.Key(k), secret)...)
		}
		return errs
	case reflect.Slice:
		l, ok := v.([]any)
		if !ok {
			return field.ErrorList{typeError(p, v, "a list", secret)}
		}
		var errs field.ErrorList
		for i, e := range l {
			errs = append(errs, checkShape(e, t.Elem(), p.Index(i), secret)...)
		}
		return errs
	case reflect.String:
		if _, ok := v.(string); !ok {
			return field.ErrorList{typeError(p, v, "a string", secret)}
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return field.ErrorList{typeError(p, v, "a boolean (true or false)", secret)}
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		f, ok := v.(float64)
		if !ok {
			return field.ErrorList{typeError(p, v, "an integer", secret)}
		}
		if f != math.Trunc(f) {
			return field.ErrorList{field.Invalid(p, shown(f, secret), "must be an integer")}
		}
		if lo, hi := intRange(t); f < lo || f > hi {
			return field.ErrorList{field.Invalid(p, shown(f, secret), fmt.Sprintf("must be an integer from %.0f to %.0f", lo, hi))}
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := v.(float64); !ok {
			return field.ErrorList{typeError(p, v, "a number", secret)}
		}
	default:
		// A type the format does not use: let the JSON decoder judge it.
	}
	return nil
}

// checkStruct checks the keys of m against the JSON names of struct type t,
// case-sensitively, and each value against its field's type.
func checkStruct(m map[string]any, t reflect.Type, p *field.Path) field.ErrorList {
	type fieldInfo struct {
		typ    reflect.Type
		secret bool
	}
	fields := make(map[string]fieldInfo, t.NumField())
	names := make([]string, 0, t.NumField())
	var collect func(t reflect.Type)
	collect = func(t reflect.Type) {
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				// Inlined, as encoding/json does with an untagged
				// embedded struct (metav1.TypeMeta `json:",inline"`).
				collect(f.Type)
				continue
			}
			if !f.IsExported() || name == "-" || name == "" {
				continue
			}
			fields[name] = fieldInfo{typ: f.Type, secret: f.Tag.Get("datapolicy") == "password"}
			names = append(names, name)
		}
	}
	collect(t)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var errs field.ErrorList
	for _, k := range keys {
		ft, ok := fields[k]
		if !ok {
			detail := "unknown field; known fields: " + strings.Join(names, ", ")
			if i := slices.IndexFunc(names, func(n string) bool { return strings.EqualFold(n, k) }); i >= 0 {
				detail = fmt.Sprintf("unknown field; field names are case-sensitive: did you mean %q?", names[i])
			}
			errs = append(errs, field.Forbidden(p.Child(k), detail))
			continue
		}
		errs = append(errs, checkShape(m[k], ft.typ, p.Child(k), ft.secret)...)
	}
	return errs
}

// typeError reports a value of the wrong JSON type.
func typeError(p *field.Path, v any, want string, secret bool) *field.Error {
	var got, hint string
	switch v.(type) {
	case map[string]any:
		got = "a mapping"
	case []any:
		got = "a list"
	case string:
		got = "a string"
	case float64:
		got, hint = "a number", ` (quote it if it is meant as a string)`
	case bool:
		got, hint = "a boolean", ` (quote it if it is meant as a string: YAML reads unquoted true, false, yes, no, on and off as booleans)`
	default:
		got = fmt.Sprintf("%T", v)
	}
	if want != "a string" {
		hint = ""
	}
	shownValue := shown(v, secret)
	switch v.(type) {
	case map[string]any:
		shownValue = "<mapping>"
	case []any:
		shownValue = "<list>"
	}
	return field.Invalid(p, shownValue, fmt.Sprintf("must be %s, not %s%s", want, got, hint))
}

// shown is v as an error may show it: "<redacted>" when secret.
func shown(v any, secret bool) any {
	if secret {
		return "<redacted>"
	}
	return v
}
