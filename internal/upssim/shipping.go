package upssim

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// shipment is a label the simulator created, kept for Void and Track.
type shipment struct {
	id       string
	packages []string        // tracking numbers, in request order
	voided   map[string]bool // per package
	service  service
	created  time.Time
	from, to addressIn
	weight   string // first package, for Track
	unit     string
}

func (sh *shipment) allVoided() bool { return len(sh.voided) == len(sh.packages) }

type shipRequest struct {
	ShipmentRequest *struct {
		Request            requestHeader `json:"Request"`
		Shipment           *shipmentIn   `json:"Shipment"`
		LabelSpecification struct {
			LabelImageFormat struct {
				Code text `json:"Code"`
			} `json:"LabelImageFormat"`
		} `json:"LabelSpecification"`
	} `json:"ShipmentRequest"`
}

// Response shapes (Shipping.yaml SHIPResponseWrapper).

type shippingLabel struct {
	ImageFormat  codeDesc `json:"ImageFormat"`
	GraphicImage string   `json:"GraphicImage"`
}

type packageResult struct {
	TrackingNumber        string        `json:"TrackingNumber"`
	BaseServiceCharge     moneyOut      `json:"BaseServiceCharge"`
	ServiceOptionsCharges moneyOut      `json:"ServiceOptionsCharges"`
	ShippingLabel         shippingLabel `json:"ShippingLabel"`
}

type shipResponse struct {
	ShipmentResponse struct {
		Response        responseHeader `json:"Response"`
		ShipmentResults struct {
			ShipmentCharges struct {
				BaseServiceCharge     moneyOut `json:"BaseServiceCharge"`
				TransportationCharges moneyOut `json:"TransportationCharges"`
				ServiceOptionsCharges moneyOut `json:"ServiceOptionsCharges"`
				TotalCharges          moneyOut `json:"TotalCharges"`
			} `json:"ShipmentCharges"`
			BillingWeight                weightOut                `json:"BillingWeight"`
			ShipmentIdentificationNumber string                   `json:"ShipmentIdentificationNumber"`
			PackageResults               oneOrMany[packageResult] `json:"PackageResults"`
		} `json:"ShipmentResults"`
	} `json:"ShipmentResponse"`
}

// handleShip answers POST /api/shipments/{version}/ship: it prices the
// shipment like Rate, mints one 1Z tracking number per package and returns
// a small label in the requested format (GIF by default).
func (s *Server) handleShip(w http.ResponseWriter, r *http.Request, body []byte, _ []string) {
	var req shipRequest
	if e := decodeUPS(body, &req); e != nil {
		e.write(w)
		return
	}
	if req.ShipmentRequest == nil || req.ShipmentRequest.Shipment == nil {
		invalid("Missing ShipmentRequest/Shipment").write(w)
		return
	}
	sh := req.ShipmentRequest.Shipment
	pkgs, e := parcels(sh.Package)
	if e != nil {
		e.write(w)
		return
	}
	code := normalizeService(sh.Service.Code.String())
	if code == "" {
		code = defaultService
	}
	svc, ok := services[code]
	if !ok {
		invalid("The requested service is invalid from the selected origin.").write(w)
		return
	}
	format := strings.ToUpper(strings.TrimSpace(req.ShipmentRequest.LabelSpecification.LabelImageFormat.Code.String()))
	from, _ := countries(sh)
	currency := currencyFor(from)
	origin := sh.ShipFrom.Address
	if len(origin.AddressLine) == 0 && origin.City == "" {
		origin = sh.Shipper.Address
	}

	s.mu.Lock()
	rec := &shipment{
		service: svc, created: s.now(), from: origin, to: sh.ShipTo.Address, voided: map[string]bool{},
		weight: strconv.FormatFloat(pkgs[0].actual, 'f', 1, 64), unit: pkgs[0].unit,
	}
	account := accountPart(sh.Shipper.ShipperNumber.String())
	for range pkgs {
		rec.packages = append(rec.packages, s.nextTrackingLocked(account, svc.code))
	}
	rec.id = rec.packages[0] // UPS uses the first package's number
	s.shipments[rec.id] = rec
	for _, tn := range rec.packages {
		s.packages[tn] = rec.id
	}
	s.mu.Unlock()

	var resp shipResponse
	sr := &resp.ShipmentResponse
	sr.Response = responseHeader{ResponseStatus: success, TransactionReference: req.ShipmentRequest.Request.echo()}
	res := &sr.ShipmentResults
	res.PackageResults = listFor[packageResult](apiVersion(r.URL.Path), shippingArraysSince)
	var total, billing float64
	for i, p := range pkgs {
		c := p.charge(svc)
		total += c
		billing += p.billing
		res.PackageResults.add(packageResult{
			TrackingNumber:        rec.packages[i],
			BaseServiceCharge:     moneyOut{currency, money(c)},
			ServiceOptionsCharges: moneyOut{currency, "0.00"},
			ShippingLabel:         label(format, rec.packages[i], svc),
		})
	}
	res.ShipmentCharges.BaseServiceCharge = moneyOut{currency, money(total)}
	res.ShipmentCharges.TransportationCharges = moneyOut{currency, money(total)}
	res.ShipmentCharges.ServiceOptionsCharges = moneyOut{currency, "0.00"}
	res.ShipmentCharges.TotalCharges = moneyOut{currency, money(total)}
	res.BillingWeight = weightOut{
		UnitOfMeasurement: codeDesc{Code: pkgs[0].unit, Description: unitDescription(pkgs[0].unit)},
		Weight:            shipWeight(billing),
	}
	res.ShipmentIdentificationNumber = rec.id
	writeJSON(w, http.StatusOK, resp)
}

// normalizeService accepts UPS service codes as "03" or "003": the Rating
// spec asks for three characters, the Shipping spec for two.
func normalizeService(code string) string {
	code = strings.TrimSpace(code)
	if len(code) == 3 && code[0] == '0' {
		return code[1:]
	}
	return code
}

// shipWeight formats the shipment billing weight. Shipping.yaml demands
// exactly 8 characters (minLength = maxLength = 8), so it is zero-padded:
// "000005.0". Real UPS sends "5.0"; parsers of either read the same number.
func shipWeight(v float64) string {
	s := strconv.FormatFloat(math.Min(v, 999999), 'f', 1, 64)
	return strings.Repeat("0", max(0, 8-len(s))) + s
}

// accountPart is the 6-character shipper account inside a 1Z number.
func accountPart(shipperNumber string) string {
	a := strings.ToUpper(strings.TrimSpace(shipperNumber))
	if len(a) != 6 {
		return "SIM000"
	}
	for _, c := range a {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return "SIM000"
		}
	}
	return a
}

// nextTrackingLocked mints an unused 1Z number. s.mu must be held.
func (s *Server) nextTrackingLocked(account, svc string) string {
	for {
		s.trackingSeq++
		body := account + fmt.Sprintf("%02s", svc) + fmt.Sprintf("%07d", s.trackingSeq%10_000_000)
		tn := "1Z" + body + string(rune('0'+upsCheckDigit(body)))
		if _, taken := s.packages[tn]; !taken {
			return tn
		}
	}
}

// upsCheckDigit computes the check digit of the 15 characters after "1Z":
// letters count as (position in alphabet + 2) mod 10, odd positions once,
// even positions twice.
func upsCheckDigit(body string) int {
	sum := 0
	for i, c := range body {
		var d int
		switch {
		case c >= '0' && c <= '9':
			d = int(c - '0')
		case c >= 'A' && c <= 'Z':
			d = int(c-'A'+2) % 10
		}
		if i%2 == 1 {
			d *= 2
		}
		sum += d
	}
	return (10 - sum%10) % 10
}

// label renders a tiny label: a striped image for GIF and PNG, or printer
// language text for ZPL, EPL and SPL. Unknown formats get GIF, which is
// also UPS's default.
func label(format, tracking string, svc service) shippingLabel {
	var data []byte
	switch format {
	case "ZPL":
		data = fmt.Appendf(nil, "^XA^FO40,40^A0N,40,40^FD%s^FS^FO40,100^BCN,120,Y,N,N^FD%s^FS^XZ\n", svc.name, tracking)
	case "EPL":
		data = fmt.Appendf(nil, "N\nA40,40,0,4,1,1,N,\"%s\"\nB40,100,0,1,2,6,120,B,\"%s\"\nP1\n", svc.name, tracking)
	case "SPL":
		data = fmt.Appendf(nil, "%s %s\n", svc.name, tracking)
	case "PNG":
		var buf bytes.Buffer
		_ = png.Encode(&buf, labelImage(tracking)) // in-memory encoding of a valid image
		data = buf.Bytes()
	default:
		format = "GIF"
		var buf bytes.Buffer
		_ = gif.Encode(&buf, labelImage(tracking), nil)
		data = buf.Bytes()
	}
	return shippingLabel{
		ImageFormat:  codeDesc{Code: format, Description: format},
		GraphicImage: base64.StdEncoding.EncodeToString(data),
	}
}

// labelImage draws a 60x40 "barcode" of the tracking number's bits.
func labelImage(tracking string) *image.Paletted {
	img := image.NewPaletted(image.Rect(0, 0, 60, 40), color.Palette{color.White, color.Black})
	for x := 0; x < 60; x++ {
		c := tracking[x%len(tracking)]
		if (c>>(x%7))&1 == 1 {
			for y := 5; y < 35; y++ {
				img.SetColorIndex(x, y, 1)
			}
		}
	}
	return img
}

type voidResponse struct {
	VoidShipmentResponse struct {
		Response      responseHeader `json:"Response"`
		SummaryResult struct {
			Status codeDesc `json:"Status"`
		} `json:"SummaryResult"`
		PackageLevelResults oneOrMany[voidPackage] `json:"PackageLevelResults,omitzero"`
	} `json:"VoidShipmentResponse"`
}

type voidPackage struct {
	TrackingNumber string   `json:"TrackingNumber"`
	Status         codeDesc `json:"Status"`
}

var errNoShipment = &apiError{http.StatusBadRequest, "190102", "No shipment found within the allowed void period"}

// handleVoid answers DELETE /api/shipments/{version}/void/cancel/{id}
// [?trackingnumber=...]. Only shipments this simulator created can be
// voided, like UPS, which answers 190102 for anything else; voiding twice
// gets 190102 too.
func (s *Server) handleVoid(w http.ResponseWriter, r *http.Request, _ []byte, params []string) {
	id := params[0]
	wanted := parseTrackingList(r.URL.Query().Get("trackingnumber"))

	s.mu.Lock()
	sh, ok := s.shipments[id]
	if !ok || sh.allVoided() {
		s.mu.Unlock()
		errNoShipment.write(w)
		return
	}
	targets := wanted
	if len(targets) == 0 {
		for _, tn := range sh.packages {
			if !sh.voided[tn] {
				targets = append(targets, tn)
			}
		}
	}
	for _, tn := range targets {
		if s.packages[tn] != id || sh.voided[tn] {
			s.mu.Unlock()
			errNoShipment.write(w)
			return
		}
	}
	for _, tn := range targets {
		sh.voided[tn] = true
	}
	s.mu.Unlock()

	var resp voidResponse
	v := &resp.VoidShipmentResponse
	v.Response = responseHeader{ResponseStatus: success}
	v.SummaryResult.Status = codeDesc{Code: "1", Description: "Voided"}
	v.PackageLevelResults = listFor[voidPackage](apiVersion(r.URL.Path), shippingArraysSince)
	for _, tn := range wanted {
		v.PackageLevelResults.add(voidPackage{TrackingNumber: tn, Status: codeDesc{Code: "1", Description: "Voided"}})
	}
	writeJSON(w, http.StatusOK, resp)
}

// parseTrackingList reads the trackingnumber query value: one number, or
// several as ["1Z...","1Z..."] (the spec's spelling) or comma-separated.
func parseTrackingList(v string) []string {
	v = strings.TrimSpace(v)
	v = strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
	var out []string
	for _, part := range strings.Split(v, ",") {
		part = strings.Trim(strings.TrimSpace(part), `"`)
		if part != "" {
			out = append(out, part)
		}
	}
	return out
}
