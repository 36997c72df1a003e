package config

import (
	"encoding/json"
	"fmt"
)

func sprintf(format string, v any) string { return fmt.Sprintf(format, v) }

func jsonMarshal(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
