package upssim

import (
	"fmt"
	"hash/fnv"
	"net/http"
	"strings"
)

type xavAddressIn struct {
	ConsigneeName       text       `json:"ConsigneeName"`
	BuildingName        text       `json:"BuildingName"`
	AddressLine         many[text] `json:"AddressLine"`
	PoliticalDivision2  text       `json:"PoliticalDivision2"`
	PoliticalDivision1  text       `json:"PoliticalDivision1"`
	PostcodePrimaryLow  text       `json:"PostcodePrimaryLow"`
	PostcodeExtendedLow text       `json:"PostcodeExtendedLow"`
	Urbanization        text       `json:"Urbanization"`
	CountryCode         text       `json:"CountryCode"`
}

type xavRequest struct {
	XAVRequest *struct {
		Request          requestHeader      `json:"Request"`
		AddressKeyFormat many[xavAddressIn] `json:"AddressKeyFormat"`
	} `json:"XAVRequest"`
}

// Response shapes (AddressValidation.yaml XAVResponseWrapper).

type xavAddressOut struct {
	ConsigneeName       string   `json:"ConsigneeName,omitempty"`
	AddressLine         []string `json:"AddressLine,omitempty"`
	Region              string   `json:"Region,omitempty"`
	PoliticalDivision2  string   `json:"PoliticalDivision2,omitempty"`
	PoliticalDivision1  string   `json:"PoliticalDivision1,omitempty"`
	PostcodePrimaryLow  string   `json:"PostcodePrimaryLow,omitempty"`
	PostcodeExtendedLow string   `json:"PostcodeExtendedLow,omitempty"`
	Urbanization        string   `json:"Urbanization,omitempty"`
	CountryCode         string   `json:"CountryCode"`
}

type xavCandidate struct {
	AddressClassification *codeDesc     `json:"AddressClassification,omitempty"`
	AddressKeyFormat      xavAddressOut `json:"AddressKeyFormat"`
}

type xavResponse struct {
	XAVResponse struct {
		Response              responseHeader          `json:"Response"`
		ValidAddressIndicator *string                 `json:"ValidAddressIndicator,omitempty"`
		NoCandidatesIndicator *string                 `json:"NoCandidatesIndicator,omitempty"`
		AddressClassification *codeDesc               `json:"AddressClassification,omitempty"`
		Candidate             oneOrMany[xavCandidate] `json:"Candidate,omitzero"`
	} `json:"XAVResponse"`
}

// handleAddressValidation answers POST
// /api/addressvalidation/{version}/{requestoption}: 1 validates, 2
// classifies, 3 does both. An address with street, state and postcode is
// "valid" and comes back upper-cased with a ZIP+4; one without any of them
// gets NoCandidatesIndicator. UPS marks indicators by their presence, with
// an empty string value.
func (s *Server) handleAddressValidation(w http.ResponseWriter, r *http.Request, body []byte, params []string) {
	version := apiVersion(r.URL.Path)
	option := strings.TrimSpace(params[0])
	if option != "1" && option != "2" && option != "3" {
		invalid("Invalid request option: use 1, 2 or 3").write(w)
		return
	}
	var req xavRequest
	if e := decodeUPS(body, &req); e != nil {
		e.write(w)
		return
	}
	if req.XAVRequest == nil || len(req.XAVRequest.AddressKeyFormat) == 0 {
		invalid("Missing XAVRequest/AddressKeyFormat").write(w)
		return
	}
	in := req.XAVRequest.AddressKeyFormat[0]
	country := strings.ToUpper(strings.TrimSpace(in.CountryCode.String()))
	if len(country) != 2 {
		invalid("Missing or invalid CountryCode").write(w)
		return
	}
	validate, classify := option != "2", option != "1"

	out := xavAddressOut{
		ConsigneeName:       clip(upper(in.ConsigneeName), 40),
		PoliticalDivision2:  clip(upper(in.PoliticalDivision2), 30),
		PoliticalDivision1:  clip(upper(in.PoliticalDivision1), 30),
		PostcodePrimaryLow:  clip(strings.TrimSpace(in.PostcodePrimaryLow.String()), 10),
		PostcodeExtendedLow: clip(strings.TrimSpace(in.PostcodeExtendedLow.String()), 10),
		Urbanization:        clip(upper(in.Urbanization), 30),
		CountryCode:         country,
	}
	for _, l := range in.AddressLine {
		if l := clip(upper(l), 100); l != "" {
			out.AddressLine = append(out.AddressLine, l)
		}
	}
	complete := len(out.AddressLine) > 0 && out.PoliticalDivision1 != "" && out.PostcodePrimaryLow != ""
	if complete && out.PostcodeExtendedLow == "" && country == "US" {
		out.PostcodeExtendedLow = plusFour(out.AddressLine[0] + out.PostcodePrimaryLow)
	}
	if complete {
		out.Region = clip(strings.TrimSpace(fmt.Sprintf("%s %s %s", out.PoliticalDivision2, out.PoliticalDivision1, postcode(out))), 100)
	}

	class := &codeDesc{Code: "2", Description: "Residential"}
	if in.ConsigneeName != "" || in.BuildingName != "" {
		class = &codeDesc{Code: "1", Description: "Commercial"}
	}

	var resp xavResponse
	x := &resp.XAVResponse
	x.Response = responseHeader{ResponseStatus: success, TransactionReference: req.XAVRequest.Request.echo()}
	present := ""
	switch {
	case validate && !complete:
		x.NoCandidatesIndicator = &present
	default:
		if validate {
			x.ValidAddressIndicator = &present
		}
		c := xavCandidate{AddressKeyFormat: out}
		if classify {
			x.AddressClassification = class
			c.AddressClassification = class
		}
		x.Candidate = listFor(version, xavArraysSince, c)
	}
	writeJSON(w, http.StatusOK, resp)
}

func upper(t text) string { return strings.ToUpper(strings.TrimSpace(t.String())) }

func postcode(a xavAddressOut) string {
	if a.PostcodeExtendedLow == "" {
		return a.PostcodePrimaryLow
	}
	return a.PostcodePrimaryLow + "-" + a.PostcodeExtendedLow
}

// plusFour makes up a stable ZIP+4 extension for an address.
func plusFour(s string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return fmt.Sprintf("%04d", h.Sum32()%10000)
}
