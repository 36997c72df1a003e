package upssim

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Request shapes shared by Rating and Shipping. Only the fields the
// simulator uses are declared; everything else is accepted and ignored.

type addressIn struct {
	AddressLine       many[text] `json:"AddressLine"`
	City              text       `json:"City"`
	StateProvinceCode text       `json:"StateProvinceCode"`
	PostalCode        text       `json:"PostalCode"`
	CountryCode       text       `json:"CountryCode"`
}

type partyIn struct {
	Name          text      `json:"Name"`
	ShipperNumber text      `json:"ShipperNumber"`
	Address       addressIn `json:"Address"`
}

type unitIn struct {
	Code text `json:"Code"`
}

type packageIn struct {
	PackageWeight *struct {
		UnitOfMeasurement unitIn `json:"UnitOfMeasurement"`
		Weight            text   `json:"Weight"`
	} `json:"PackageWeight"`
	Dimensions *struct {
		UnitOfMeasurement unitIn `json:"UnitOfMeasurement"`
		Length            text   `json:"Length"`
		Width             text   `json:"Width"`
		Height            text   `json:"Height"`
	} `json:"Dimensions"`
}

type shipmentIn struct {
	Shipper  partyIn `json:"Shipper"`
	ShipTo   partyIn `json:"ShipTo"`
	ShipFrom partyIn `json:"ShipFrom"`
	Service  struct {
		Code text `json:"Code"`
	} `json:"Service"`
	Package many[packageIn] `json:"Package"`
}

type rateRequest struct {
	RateRequest *struct {
		Request  requestHeader `json:"Request"`
		Shipment *shipmentIn   `json:"Shipment"`
	} `json:"RateRequest"`
}

// service is a UPS service the simulator prices: a fixed base for the
// first pound (or kilogram) plus a rate per further unit.
type service struct {
	code, name    string
	base, perUnit float64
	transitDays   int
}

var services = map[string]service{
	"01": {"01", "UPS Next Day Air", 45.20, 4.15, 1},
	"02": {"02", "UPS 2nd Day Air", 27.85, 2.65, 2},
	"03": {"03", "UPS Ground", 11.40, 0.92, 3},
	"12": {"12", "UPS 3 Day Select", 19.95, 1.70, 3},
	"13": {"13", "UPS Next Day Air Saver", 40.35, 3.80, 1},
	"14": {"14", "UPS Next Day Air Early", 78.10, 4.95, 1},
	"59": {"59", "UPS 2nd Day Air A.M.", 33.60, 2.95, 2},
	"07": {"07", "UPS Worldwide Express", 98.40, 9.10, 2},
	"08": {"08", "UPS Worldwide Expedited", 86.25, 8.20, 4},
	"11": {"11", "UPS Standard", 24.80, 2.10, 5},
	"54": {"54", "UPS Worldwide Express Plus", 140.75, 9.60, 1},
	"65": {"65", "UPS Worldwide Saver", 92.10, 8.75, 2},
	"17": {"17", "UPS Worldwide Economy DDU", 45.00, 3.90, 7},
	"72": {"72", "UPS Worldwide Economy DDP", 47.50, 4.10, 7},
	"70": {"70", "UPS Access Point Economy", 22.40, 1.95, 5},
	"71": {"71", "UPS Worldwide Express Freight Midday", 290.00, 6.00, 3},
	"74": {"74", "UPS Express 12:00", 85.30, 7.90, 1},
	"75": {"75", "UPS Heavy Goods", 180.00, 3.10, 3},
	"96": {"96", "UPS Worldwide Express Freight", 310.00, 6.20, 3},
	"82": {"82", "UPS Today Standard", 18.00, 0.80, 1},
	"83": {"83", "UPS Today Dedicated Courier", 95.00, 1.50, 1},
	"84": {"84", "UPS Today Intercity", 30.00, 1.00, 1},
	"85": {"85", "UPS Today Express", 25.00, 1.00, 1},
	"86": {"86", "UPS Today Express Saver", 21.00, 0.90, 1},
	"92": {"92", "UPS SurePost Less Than 1 lb", 7.90, 0.50, 5},
	"93": {"93", "UPS SurePost 1 lb or Greater", 9.80, 0.70, 5},
	"M2": {"M2", "UPS First Class Mail", 5.10, 0.40, 5},
	"M3": {"M3", "UPS Priority Mail", 8.90, 0.80, 3},
	"M4": {"M4", "UPS Expedited Mail Innovations", 6.40, 0.55, 4},
	"M5": {"M5", "UPS Priority Mail Innovations", 9.50, 0.85, 3},
	"M6": {"M6", "UPS Economy Mail Innovations", 5.90, 0.45, 7},
	"M7": {"M7", "UPS Mail Innovations Returns", 6.10, 0.50, 7},
}

// What Shop returns, cheapest first as UPS tends to.
var (
	shopDomestic      = []string{"03", "12", "02", "59", "13", "01", "14"}
	shopInternational = []string{"11", "08", "65", "07", "54"}
)

const defaultService = "03"

// parcel is a package with its weights worked out.
type parcel struct {
	unit    string  // LBS or KGS
	actual  float64 // as declared
	billing float64 // whole units, at least the dimensional weight
}

// parcels reads the packages of a shipment. UPS rejects a package without
// a usable weight, and so does the simulator.
func parcels(in many[packageIn]) ([]parcel, *apiError) {
	if len(in) == 0 {
		return nil, invalid("Missing or invalid Package")
	}
	out := make([]parcel, 0, len(in))
	for i, p := range in {
		if p.PackageWeight == nil {
			return nil, invalid(fmt.Sprintf("Missing package weight for package %d", i+1))
		}
		w, err := strconv.ParseFloat(strings.TrimSpace(p.PackageWeight.Weight.String()), 64)
		if err != nil || !(w > 0) || w > 10000 {
			return nil, invalid(fmt.Sprintf("Invalid package weight for package %d", i+1))
		}
		unit := strings.ToUpper(strings.TrimSpace(p.PackageWeight.UnitOfMeasurement.Code.String()))
		if unit != "KGS" {
			unit = "LBS"
		}
		billing := math.Ceil(w)
		if d := p.Dimensions; d != nil {
			// Dimensional weight: UPS's daily-rates divisors.
			divisor := 139.0
			if strings.EqualFold(strings.TrimSpace(d.UnitOfMeasurement.Code.String()), "CM") {
				divisor = 5000
			}
			l, _ := strconv.ParseFloat(strings.TrimSpace(d.Length.String()), 64)
			wd, _ := strconv.ParseFloat(strings.TrimSpace(d.Width.String()), 64)
			h, _ := strconv.ParseFloat(strings.TrimSpace(d.Height.String()), 64)
			if dim := math.Ceil(l * wd * h / divisor); dim > billing && dim < 100000 {
				billing = dim
			}
		}
		out = append(out, parcel{unit: unit, actual: w, billing: math.Max(billing, 1)})
	}
	return out, nil
}

func (p parcel) charge(svc service) float64 {
	return svc.base + svc.perUnit*(p.billing-1)
}

func unitDescription(unit string) string {
	if unit == "KGS" {
		return "Kilograms"
	}
	return "Pounds"
}

// origin and destination countries of a shipment; UPS defaults to the
// shipper's address when there is no ShipFrom.
func countries(sh *shipmentIn) (from, to string) {
	from = strings.ToUpper(strings.TrimSpace(sh.ShipFrom.Address.CountryCode.String()))
	if from == "" {
		from = strings.ToUpper(strings.TrimSpace(sh.Shipper.Address.CountryCode.String()))
	}
	to = strings.ToUpper(strings.TrimSpace(sh.ShipTo.Address.CountryCode.String()))
	if from == "" {
		from = "US"
	}
	if to == "" {
		to = from
	}
	return from, to
}

func currencyFor(country string) string {
	switch country {
	case "CA":
		return "CAD"
	case "GB":
		return "GBP"
	case "MX":
		return "MXN"
	case "PL":
		return "PLN"
	case "AT", "BE", "DE", "ES", "FI", "FR", "IE", "IT", "LU", "NL", "PT":
		return "EUR"
	}
	return "USD"
}

func money(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// rateWeight formats a RatedShipment weight within the spec's 5 characters.
func rateWeight(v float64) string {
	if v >= 1000 {
		return clip(strconv.FormatFloat(math.Round(v), 'f', 0, 64), 5)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// Response shapes (Rating.yaml RATEResponseWrapper).

type moneyOut struct {
	CurrencyCode  string `json:"CurrencyCode"`
	MonetaryValue string `json:"MonetaryValue"`
}

type weightOut struct {
	UnitOfMeasurement codeDesc `json:"UnitOfMeasurement"`
	Weight            string   `json:"Weight"`
}

type ratedPackage struct {
	TransportationCharges moneyOut  `json:"TransportationCharges"`
	BaseServiceCharge     moneyOut  `json:"BaseServiceCharge"`
	ServiceOptionsCharges moneyOut  `json:"ServiceOptionsCharges"`
	TotalCharges          moneyOut  `json:"TotalCharges"`
	Weight                string    `json:"Weight"`
	BillingWeight         weightOut `json:"BillingWeight"`
}

type arrivalOut struct {
	Date string `json:"Date"`
	Time string `json:"Time,omitempty"`
}

type timeInTransitOut struct {
	PickupDate     string `json:"PickupDate"`
	ServiceSummary struct {
		Service struct {
			Description string `json:"Description"`
		} `json:"Service"`
		EstimatedArrival struct {
			Arrival               arrivalOut `json:"Arrival"`
			BusinessDaysInTransit string     `json:"BusinessDaysInTransit"`
			Pickup                arrivalOut `json:"Pickup"`
			DayOfWeek             string     `json:"DayOfWeek"`
			TotalTransitDays      string     `json:"TotalTransitDays"`
		} `json:"EstimatedArrival"`
		SaturdayDelivery string `json:"SaturdayDelivery"`
	} `json:"ServiceSummary"`
}

type ratedShipment struct {
	Service               codeDesc                `json:"Service"`
	BillingWeight         weightOut               `json:"BillingWeight"`
	TransportationCharges moneyOut                `json:"TransportationCharges"`
	BaseServiceCharge     moneyOut                `json:"BaseServiceCharge"`
	ServiceOptionsCharges moneyOut                `json:"ServiceOptionsCharges"`
	TotalCharges          moneyOut                `json:"TotalCharges"`
	RatedPackage          oneOrMany[ratedPackage] `json:"RatedPackage"`
	TimeInTransit         *timeInTransitOut       `json:"TimeInTransit,omitempty"`
}

type rateResponse struct {
	RateResponse struct {
		Response      responseHeader           `json:"Response"`
		RatedShipment oneOrMany[ratedShipment] `json:"RatedShipment"`
	} `json:"RateResponse"`
}

// handleRate answers POST /api/rating/{version}/{requestoption}.
// RatedShipment is one-or-many as Rating.yaml says: before v2409 a Rate
// answer's lone RatedShipment is an object and a Shop answer's list an
// array; from v2409 on both are arrays (RatedPackage and Alert likewise,
// from v2403).
func (s *Server) handleRate(w http.ResponseWriter, r *http.Request, body []byte, params []string) {
	var shop, transit bool
	switch strings.ToLower(params[0]) {
	case "rate":
	case "shop":
		shop = true
	case "ratetimeintransit":
		transit = true
	case "shoptimeintransit":
		shop, transit = true, true
	default:
		invalid("Invalid request option: use Rate, Shop, Ratetimeintransit or Shoptimeintransit").write(w)
		return
	}
	if strings.EqualFold(r.URL.Query().Get("additionalinfo"), "timeintransit") {
		transit = true
	}
	var req rateRequest
	if e := decodeUPS(body, &req); e != nil {
		e.write(w)
		return
	}
	if req.RateRequest == nil || req.RateRequest.Shipment == nil {
		invalid("Missing RateRequest/Shipment").write(w)
		return
	}
	sh := req.RateRequest.Shipment
	pkgs, e := parcels(sh.Package)
	if e != nil {
		e.write(w)
		return
	}
	from, to := countries(sh)
	var codes []string
	switch {
	case shop && from == to:
		codes = shopDomestic
	case shop:
		codes = shopInternational
	default:
		code := normalizeService(sh.Service.Code.String())
		if code == "" {
			code = defaultService
		}
		if _, ok := services[code]; !ok {
			// UPS Rating's code for a service it does not offer.
			(&apiError{http.StatusBadRequest, "111100", "The requested service is invalid from the selected origin."}).write(w)
			return
		}
		codes = []string{code}
	}
	currency := currencyFor(from)
	now := s.now()
	version := apiVersion(r.URL.Path)

	var resp rateResponse
	resp.RateResponse.RatedShipment = listFor[ratedShipment](version, ratedShipmentArrays)
	resp.RateResponse.Response = responseHeader{
		ResponseStatus: success,
		// UPS adds this alert to nearly every rate reply.
		Alert:                listFor(version, ratingArraysSince, codeDesc{Code: "110971", Description: "Your invoice may vary from the displayed reference rates"}),
		TransactionReference: req.RateRequest.Request.echo(),
	}
	for _, code := range codes {
		svc := services[code]
		rs := ratedShipment{Service: codeDesc{Code: svc.code, Description: svc.name}, RatedPackage: listFor[ratedPackage](version, ratingArraysSince)}
		var total, billing float64
		for _, p := range pkgs {
			c := p.charge(svc)
			total += c
			billing += p.billing
			rs.RatedPackage.add(ratedPackage{
				TransportationCharges: moneyOut{currency, money(c)},
				BaseServiceCharge:     moneyOut{currency, money(c)},
				ServiceOptionsCharges: moneyOut{currency, "0.00"},
				TotalCharges:          moneyOut{currency, money(c)},
				Weight:                strconv.FormatFloat(p.actual, 'f', -1, 64),
				BillingWeight: weightOut{
					UnitOfMeasurement: codeDesc{Code: p.unit, Description: unitDescription(p.unit)},
					Weight:            rateWeight(p.billing),
				},
			})
		}
		rs.BillingWeight = weightOut{
			UnitOfMeasurement: codeDesc{Code: pkgs[0].unit, Description: unitDescription(pkgs[0].unit)},
			Weight:            rateWeight(billing),
		}
		rs.TransportationCharges = moneyOut{currency, money(total)}
		rs.BaseServiceCharge = moneyOut{currency, money(total)}
		rs.ServiceOptionsCharges = moneyOut{currency, "0.00"}
		rs.TotalCharges = moneyOut{currency, money(total)}
		if transit {
			rs.TimeInTransit = timeInTransit(svc, now)
		}
		resp.RateResponse.RatedShipment.add(rs)
	}
	writeJSON(w, http.StatusOK, resp)
}

// timeInTransit estimates arrival: pickup today (or Monday at a weekend),
// then svc.transitDays business days.
func timeInTransit(svc service, now time.Time) *timeInTransitOut {
	pickup := nextBusinessDay(now.UTC(), 0)
	arrival := nextBusinessDay(pickup, svc.transitDays)
	t := &timeInTransitOut{PickupDate: pickup.Format("20060102")}
	ss := &t.ServiceSummary
	ss.Service.Description = svc.name
	ea := &ss.EstimatedArrival
	ea.Arrival = arrivalOut{Date: arrival.Format("20060102"), Time: "230000"}
	if svc.transitDays == 1 {
		ea.Arrival.Time = "103000"
	}
	ea.BusinessDaysInTransit = strconv.Itoa(svc.transitDays)
	ea.Pickup = arrivalOut{Date: pickup.Format("20060102"), Time: "190000"}
	ea.DayOfWeek = strings.ToUpper(arrival.Weekday().String()[:3])
	ea.TotalTransitDays = strconv.Itoa(int(arrival.Sub(pickup).Hours() / 24))
	ss.SaturdayDelivery = "0"
	return t
}

// nextBusinessDay moves days business days ahead of t; with days 0 it only
// moves a weekend date to Monday.
func nextBusinessDay(t time.Time, days int) time.Time {
	for t.Weekday() == time.Saturday || t.Weekday() == time.Sunday {
		t = t.AddDate(0, 0, 1)
	}
	for days > 0 {
		t = t.AddDate(0, 0, 1)
		if t.Weekday() != time.Saturday && t.Weekday() != time.Sunday {
			days--
		}
	}
	return t
}
