package upssim

import (
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// Response shapes (Tracking.yaml TrackApiResponse). Tracking, unlike the
// other APIs, uses lowerCamelCase.

type trackAddress struct {
	City          string `json:"city,omitempty"`
	StateProvince string `json:"stateProvince,omitempty"`
	PostalCode    string `json:"postalCode,omitempty"`
	CountryCode   string `json:"countryCode,omitempty"`
	Country       string `json:"country,omitempty"`
}

type trackStatus struct {
	Type                      string `json:"type"`
	Description               string `json:"description"`
	Code                      string `json:"code"`
	StatusCode                string `json:"statusCode"`
	SimplifiedTextDescription string `json:"simplifiedTextDescription"`
}

type trackActivity struct {
	Location struct {
		Address trackAddress `json:"address"`
	} `json:"location"`
	Status    trackStatus `json:"status"`
	Date      string      `json:"date"`
	Time      string      `json:"time"`
	GMTDate   string      `json:"gmtDate"`
	GMTOffset string      `json:"gmtOffset"`
	GMTTime   string      `json:"gmtTime"`
}

type trackDated struct {
	Type string `json:"type"`
	Date string `json:"date"`
}

type trackPackage struct {
	TrackingNumber string          `json:"trackingNumber"`
	DeliveryDate   []trackDated    `json:"deliveryDate"`
	DeliveryTime   *trackTime      `json:"deliveryTime,omitempty"`
	Activity       []trackActivity `json:"activity"`
	CurrentStatus  trackStatus     `json:"currentStatus"`
	PackageAddress []trackParty    `json:"packageAddress"`
	Weight         *trackWeight    `json:"weight,omitempty"`
	Service        trackService    `json:"service"`
	PackageCount   int             `json:"packageCount"`
}

type trackTime struct {
	Type    string `json:"type"`
	EndTime string `json:"endTime"`
}

type trackParty struct {
	Type    string       `json:"type"`
	Address trackAddress `json:"address"`
}

type trackWeight struct {
	UnitOfMeasurement string `json:"unitOfMeasurement"`
	Weight            string `json:"weight"`
}

type trackService struct {
	Code        string `json:"code"`
	LevelCode   string `json:"levelCode"`
	Description string `json:"description"`
}

type trackWarning struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type trackShipment struct {
	InquiryNumber string         `json:"inquiryNumber"`
	Package       []trackPackage `json:"package,omitempty"`
	Warnings      []trackWarning `json:"warnings,omitempty"`
}

type trackResponse struct {
	TrackResponse struct {
		Shipment []trackShipment `json:"shipment"`
	} `json:"trackResponse"`
}

var (
	statusLabel     = trackStatus{Type: "M", Description: "Shipper created a label, UPS has not received the package yet. ", Code: "MP", StatusCode: "003", SimplifiedTextDescription: "Label Created"}
	statusTransit   = trackStatus{Type: "I", Description: "Departed from Facility", Code: "DP", StatusCode: "005", SimplifiedTextDescription: "On the Way"}
	statusDelivered = trackStatus{Type: "D", Description: "DELIVERED", Code: "KB", StatusCode: "011", SimplifiedTextDescription: "Delivered"}
)

// testInquiryPrefix marks UPS's published CIE sample tracking numbers
// (1Z12345E0205271688 and friends); they track as delivered.
const testInquiryPrefix = "1Z12345E"

// handleTrack answers GET /api/track/v1/details/{inquiryNumber}. Packages
// this simulator shipped move from label created to in transit (after 12
// hours) to delivered (on the estimated day), by the simulator's clock.
// Unknown numbers get 200 with warning TW0001, as UPS answers in practice
// (UPS-API/api-documentation issues 102, 166), not the spec's 404.
func (s *Server) handleTrack(w http.ResponseWriter, r *http.Request, _ []byte, params []string) {
	if r.Header.Get("transId") == "" || r.Header.Get("transactionSrc") == "" {
		invalid("Missing transId or transactionSrc header").write(w)
		return
	}
	inquiry := strings.ToUpper(strings.TrimSpace(params[0]))
	if n := utf8.RuneCountInString(inquiry); n < 7 || n > 34 {
		// UPS's answer for a malformed number (api-documentation issue 12).
		(&apiError{http.StatusBadRequest, "TV1002", "Invalid inquiry number"}).write(w)
		return
	}

	s.mu.Lock()
	now := s.now()
	var pkg *trackPackage
	if id, ok := s.packages[inquiry]; ok {
		if sh := s.shipments[id]; sh != nil && !sh.voided[inquiry] {
			pkg = trackKnown(sh, inquiry, now)
		}
	}
	s.mu.Unlock()
	if pkg == nil && strings.HasPrefix(inquiry, testInquiryPrefix) {
		pkg = trackSample(inquiry, now)
	}

	var resp trackResponse
	ts := trackShipment{InquiryNumber: inquiry}
	if pkg != nil {
		ts.Package = []trackPackage{*pkg}
	} else {
		ts.Warnings = []trackWarning{{Code: "TW0001", Message: "Tracking Information Not Found"}}
	}
	resp.TrackResponse.Shipment = []trackShipment{ts}
	writeJSON(w, http.StatusOK, resp)
}

func trackKnown(sh *shipment, tn string, now time.Time) *trackPackage {
	delivery := nextBusinessDay(sh.created.UTC(), sh.service.transitDays)
	delivery = time.Date(delivery.Year(), delivery.Month(), delivery.Day(), 10, 30, 0, 0, time.UTC)
	from, to := trackAddr(sh.from), trackAddr(sh.to)
	p := &trackPackage{
		TrackingNumber: tn,
		Service:        trackService{Code: "0" + sh.service.code, LevelCode: "0" + sh.service.code, Description: sh.service.name},
		PackageCount:   len(sh.packages),
		PackageAddress: []trackParty{{Type: "ORIGIN", Address: from}, {Type: "DESTINATION", Address: to}},
		Weight:         &trackWeight{UnitOfMeasurement: sh.unit, Weight: sh.weight},
	}
	p.Activity = []trackActivity{activity(from, statusLabel, sh.created)}
	if departed := sh.created.Add(12 * time.Hour); !now.Before(departed) {
		p.Activity = append([]trackActivity{activity(from, statusTransit, departed)}, p.Activity...)
	}
	if !now.Before(delivery) {
		p.Activity = append([]trackActivity{activity(to, statusDelivered, delivery)}, p.Activity...)
		p.DeliveryDate = []trackDated{{Type: "DEL", Date: delivery.Format("20060102")}}
	} else {
		p.DeliveryDate = []trackDated{{Type: "SDD", Date: delivery.Format("20060102")}}
		p.DeliveryTime = &trackTime{Type: "EOD", EndTime: "235900"}
	}
	p.CurrentStatus = p.Activity[0].Status
	return p
}

// trackSample is the canned "delivered yesterday" answer for UPS's sample
// numbers.
func trackSample(tn string, now time.Time) *trackPackage {
	y := now.UTC().AddDate(0, 0, -1)
	delivered := time.Date(y.Year(), y.Month(), y.Day(), 10, 30, 0, 0, time.UTC)
	shipped := delivered.AddDate(0, 0, -2)
	from := trackAddress{City: "TIMONIUM", StateProvince: "MD", PostalCode: "21093", CountryCode: "US", Country: "US"}
	to := trackAddress{City: "ALPHARETTA", StateProvince: "GA", PostalCode: "30005", CountryCode: "US", Country: "US"}
	p := &trackPackage{
		TrackingNumber: tn,
		Service:        trackService{Code: "003", LevelCode: "003", Description: "UPS Ground"},
		PackageCount:   1,
		PackageAddress: []trackParty{{Type: "ORIGIN", Address: from}, {Type: "DESTINATION", Address: to}},
		Weight:         &trackWeight{UnitOfMeasurement: "LBS", Weight: "5.00"},
		DeliveryDate:   []trackDated{{Type: "DEL", Date: delivered.Format("20060102")}},
		Activity: []trackActivity{
			activity(to, statusDelivered, delivered),
			activity(from, statusTransit, shipped.Add(20*time.Hour)),
			activity(from, statusLabel, shipped),
		},
	}
	p.CurrentStatus = statusDelivered
	return p
}

func activity(where trackAddress, st trackStatus, at time.Time) trackActivity {
	at = at.UTC()
	a := trackActivity{Status: st, Date: at.Format("20060102"), Time: at.Format("150405"),
		GMTDate: at.Format("20060102"), GMTOffset: "+00:00", GMTTime: at.Format("15:04:05")}
	a.Location.Address = where
	return a
}

func trackAddr(a addressIn) trackAddress {
	cc := strings.ToUpper(strings.TrimSpace(a.CountryCode.String()))
	return trackAddress{
		City:          strings.ToUpper(strings.TrimSpace(a.City.String())),
		StateProvince: strings.ToUpper(strings.TrimSpace(a.StateProvinceCode.String())),
		PostalCode:    strings.TrimSpace(a.PostalCode.String()),
		CountryCode:   cc,
		Country:       cc,
	}
}
