package upssim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
)

// trackingNumbers is LabelRecoveryRequest.TrackingNumbers, which
// Shipping.yaml declares as an array of strings while its own example sends
// {"TrackingNumber": [...]}: both are accepted, a lone string too.
type trackingNumbers []string

func (t *trackingNumbers) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var wrapped struct {
			TrackingNumber many[text] `json:"TrackingNumber"`
		}
		if err := json.Unmarshal(b, &wrapped); err != nil {
			return err
		}
		for _, n := range wrapped.TrackingNumber {
			*t = append(*t, n.String())
		}
		return nil
	}
	var list many[text]
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	for _, n := range list {
		*t = append(*t, n.String())
	}
	return nil
}

type labelRecoveryRequest struct {
	LabelRecoveryRequest *struct {
		Request            requestHeader `json:"Request"`
		LabelSpecification struct {
			LabelImageFormat struct {
				Code text `json:"Code"`
			} `json:"LabelImageFormat"`
		} `json:"LabelSpecification"`
		TrackingNumber  text            `json:"TrackingNumber"`
		TrackingNumbers trackingNumbers `json:"TrackingNumbers"`
	} `json:"LabelRecoveryRequest"`
}

// Response shapes (Shipping.yaml LABELRECOVERYResponseWrapper).

type recoveredLabel struct {
	TrackingNumber string `json:"TrackingNumber"`
	LabelImage     struct {
		LabelImageFormat struct {
			Code string `json:"Code"`
		} `json:"LabelImageFormat"`
		GraphicImage string `json:"GraphicImage"`
	} `json:"LabelImage"`
}

type labelRecoveryResponse struct {
	LabelRecoveryResponse struct {
		Response                     responseHeader            `json:"Response"`
		ShipmentIdentificationNumber string                    `json:"ShipmentIdentificationNumber,omitempty"`
		LabelResults                 oneOrMany[recoveredLabel] `json:"LabelResults"`
	} `json:"LabelRecoveryResponse"`
}

// labelResultsArraysSince: Shipping.yaml declares LabelResults an array
// without the one-or-many note of its other lists, but UPS answers a v1
// recovery of one label with a lone object (the CIE answer quoted in
// abantecart/ups-php issue 12, which generated SDKs model as oneOf); the
// simulator treats it like Shipping's other lists.
const labelResultsArraysSince = shippingArraysSince

// handleLabelRecovery answers POST /api/labels/{version}/recovery, where
// the legacy /ship/{version}/shipments/labels translation leads: it
// returns the labels of packages this simulator shipped (and did not
// void) again, in the requested format. Recovery by reference number is
// not simulated.
func (s *Server) handleLabelRecovery(w http.ResponseWriter, r *http.Request, body []byte, _ []string) {
	var req labelRecoveryRequest
	if e := decodeUPS(body, &req); e != nil {
		e.write(w)
		return
	}
	lr := req.LabelRecoveryRequest
	if lr == nil {
		invalid("Missing LabelRecoveryRequest").write(w)
		return
	}
	var wanted []string
	if tn := strings.ToUpper(strings.TrimSpace(lr.TrackingNumber.String())); tn != "" {
		wanted = append(wanted, tn)
	}
	for _, tn := range lr.TrackingNumbers {
		if tn = strings.ToUpper(strings.TrimSpace(tn)); tn != "" {
			wanted = append(wanted, tn)
		}
	}
	if len(wanted) == 0 {
		invalid("Missing TrackingNumber: the simulator recovers labels by tracking number only").write(w)
		return
	}
	format := strings.ToUpper(strings.TrimSpace(lr.LabelSpecification.LabelImageFormat.Code.String()))

	var resp labelRecoveryResponse
	out := &resp.LabelRecoveryResponse
	out.Response = responseHeader{ResponseStatus: success, TransactionReference: lr.Request.echo()}
	out.LabelResults = listFor[recoveredLabel](apiVersion(r.URL.Path), labelResultsArraysSince)
	s.mu.Lock()
	for _, tn := range wanted {
		sh := s.shipments[s.packages[tn]]
		if sh == nil || sh.voided[tn] {
			s.mu.Unlock()
			errNoLabel.write(w)
			return
		}
		if out.ShipmentIdentificationNumber == "" {
			out.ShipmentIdentificationNumber = sh.id
		}
		lbl := label(format, tn, sh.service)
		var rl recoveredLabel
		rl.TrackingNumber = tn
		rl.LabelImage.LabelImageFormat.Code = lbl.ImageFormat.Code
		rl.LabelImage.GraphicImage = lbl.GraphicImage
		out.LabelResults.add(rl)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

// errNoLabel is the simulator's answer for a tracking number it has no
// (unvoided) label for.
var errNoLabel = invalid("No label found for the tracking number")
