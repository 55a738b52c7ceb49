"""Word lists of the demo history (names, streets, cars, texts) and the UK bank-holiday rules."""

from __future__ import annotations

import random
from datetime import date, timedelta

FIRST = ("Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Mia", "Noah", "Grace",
         "Thomas", "Sophie", "James", "Emily", "William", "Chloe", "Henry", "Lucy", "Samuel",
         "Hannah", "Daniel", "Ellie", "Joseph", "Freya", "Arthur", "Ruby", "Edward", "Poppy")
LAST = ("Bennett", "Hargreaves", "Walker", "Thompson", "Wright", "Robinson", "Clarke", "Wood",
        "Fletcher", "Atkinson", "Holmes", "Kershaw", "Lister", "Metcalfe", "Pickersgill",
        "Barker", "Dawson", "Greenwood", "Horsfall", "Sutcliffe", "Whitaker", "Ackroyd",
        "Brearley", "Crowther", "Naylor", "Rhodes", "Scaife", "Tennant", "Varley", "Moorhouse")
STREETS = ("Mill Lane", "Church Street", "Station Road", "Heworth Green", "Bootham Terrace",
           "Clifton Moor Gate", "Fulford Road", "Hull Road", "Tadcaster Road", "Water End",
           "Gillygate", "Lawrence Street", "Bishopthorpe Road", "Haxby Road", "Wetherby Road",
           "Kings Square", "Marygate", "Nunnery Lane")
# (town, postcode area and district, landline area code)
TOWNS = (("York", "YO1", "01904"), ("York", "YO24", "01904"), ("York", "YO31", "01904"),
         ("Harrogate", "HG1", "01423"), ("Selby", "YO8", "01757"), ("Malton", "YO17", "01653"),
         ("Tadcaster", "LS24", "01937"), ("Pickering", "YO18", "01751"),
         ("Thirsk", "YO7", "01845"), ("Leeds", "LS6", "0113"))
MAIL_DOMAINS = ("example.co.uk", "example.com", "mail.example.net", "example.org")

PLACES = ("Northgate", "Riverside", "Ouse Valley", "Minster", "Castlegate", "Heworth", "Acomb",
          "Fulford", "Dales", "Moorland", "Wolds", "Bootham", "Howardian", "Swale")
TRADES = (("Joinery", "crafts"), ("Bakery", "food"), ("Logistics", "logistics"),
          ("Dental Practice", "health"), ("Architects", "services"), ("Print Works", "crafts"),
          ("Garden Centre", "retail"), ("Electrical", "trades"), ("Plumbing & Heating", "trades"),
          ("Consulting", "services"), ("Coffee Roasters", "food"), ("Veterinary Clinic", "health"),
          ("Opticians", "health"), ("Lettings", "property"), ("Software", "tech"),
          ("Brewery", "food"), ("Bookshop", "retail"), ("Removals", "logistics"))
SUFFIXES = ("Ltd", "Ltd", "Ltd", "LLP", "& Co", "Ltd", "Partners")
PARTNER_NAMES = ("Yorkshire Business Hub", "Minster Accountancy Network", "Dales Payroll Alliance")
SUPPLIER_NAMES = ("Euro Car Parts York", "Northern Tyre Wholesale", "Pennine Lubricants",
                  "Castlegate Office Supplies")

CARS = ("Ford Focus", "Vauxhall Corsa", "VW Golf", "Nissan Qashqai", "Toyota Yaris",
        "BMW 3 Series", "Kia Sportage", "Skoda Octavia", "Audi A3", "Mini Cooper",
        "Hyundai Tucson", "Volvo XC60", "Ford Fiesta", "Toyota Corolla", "Honda Jazz")
MECHANICS = ("Dave Pickering", "Steve Holroyd", "Gary Marsden", "Priya Shah", "Tom Ellerby",
             "Kieran Walsh")
# (service, lowest price, highest price, days in the workshop)
SERVICES = (("Full service", 180, 320, 0), ("Interim service", 110, 170, 0),
            ("MOT test", 55, 55, 0), ("Front brake pads", 120, 220, 0),
            ("Brake discs and pads", 260, 420, 0), ("Two tyres", 140, 380, 0),
            ("Wheel alignment", 60, 90, 0), ("Air-con recharge", 70, 110, 0),
            ("Battery replacement", 130, 210, 0), ("Clutch replacement", 550, 950, 2),
            ("Timing belt", 380, 620, 1), ("Diagnostics", 60, 120, 0),
            ("Exhaust repair", 150, 380, 1), ("Windscreen replacement", 250, 480, 1))

STAGES = ("booking", "reception", "paperwork", "repair_quality", "delivery")
# (question id, stage, text, weight of being the one a dissatisfied client unticks)
QUESTIONS = (
    ("booking_easy", "booking", "Was it easy to book a visit at a time that suited you?", 1.0),
    ("booking_phone", "booking", "Did we answer the phone promptly?", 1.5),
    ("reception_prompt", "reception", "Were you received promptly and politely?", 0.8),
    ("reception_estimate", "reception",
     "Did the service adviser explain the work and the estimate clearly?", 2.0),
    ("paperwork_correct", "paperwork", "Were the work order and the invoice correct?", 1.2),
    ("paperwork_quick", "paperwork", "Was the paperwork at pick-up quick?", 3.0),
    ("repair_fixed", "repair_quality", "Was the fault fixed the first time?", 1.5),
    ("repair_clean", "repair_quality", "Was the car returned clean and undamaged?", 1.0),
    ("delivery_on_time", "delivery", "Was the car ready at the promised time?", 3.0),
    ("delivery_explained", "delivery", "Did we explain what was done and what is due next?", 1.0),
)
QUESTION_V2 = ("booking_online", "booking", "Could you book online when you wanted to?", 1.5)

COMPLAINTS = {
    "booking": "Waited twenty minutes on the phone to book and was then given the wrong day.",
    "reception": "Nobody explained why the estimate changed after the car was checked in.",
    "paperwork": "Invoice lists a part that was not fitted; asked twice for a corrected copy.",
    "repair_quality": "The warning light came back on two days after the repair.",
    "delivery": "The car was promised for 4 pm and was only ready after 6 pm.",
}
WISHES = {
    "booking": "Would like to book online in the evening.",
    "reception": "A courtesy car for longer repairs would help.",
    "paperwork": "Please e-mail the invoice instead of printing it.",
    "repair_quality": "Would like photos of the worn parts that were replaced.",
    "delivery": "A text message when the car is ready would be great.",
}
SURVEY_COMMENTS = ("Very happy, thank you.", "All good as always.", "Friendly staff.",
                   "Quick and fair price.")
UNTICK_COMMENTS = {
    "booking": "Hard to get through on the phone.",
    "reception": "Estimate was not explained.",
    "paperwork": "Had to wait at the desk for the invoice.",
    "repair_quality": "Not sure the noise is gone.",
    "delivery": "Car was ready late.",
}

REGULAR_TOPICS = ("Monthly review of the books", "Quarter-end VAT preparation",
                  "Payroll changes for new starters", "Year-end planning",
                  "Cash-flow check and upcoming bills", "Expense policy questions",
                  "Review of outstanding supplier invoices")
QUESTION_TOPICS = ("Question about mileage allowances", "How to submit receipts in the portal",
                   "Question about a P45 for a leaver", "Can we change the payroll date?",
                   "Question about the VAT flat-rate scheme")
AGREEMENTS = ("Send the bank statements for last month", "Upload missing purchase receipts",
              "Confirm the new starters' tax codes", "Sign the direct debit mandate",
              "Send the pension scheme letter", "Review and approve the draft accounts")
WORKS = ("Prepare the quarterly VAT return", "Run payroll with the new starters",
         "Reconcile the bank account", "Prepare the year-end accounts draft",
         "Set up the new expense categories", "File the confirmation statement")
FEEDBACK = {5: "Spot on, thank you.", 4: "Good, a little later than hoped.",
            3: "Fine, but we had to chase.", 2: "Several mistakes to correct.",
            1: "Not done the way we agreed."}
INTERESTS_PERSON = ("Asked about winter tyre storage.", "Interested in a service plan.",
                    "Thinking of switching to an electric car next year.",
                    "Also has a caravan that needs servicing.")
INTERESTS_ORG = ("Also keeps the books for a small family property company.",
                 "Considering outsourcing payroll from next April.",
                 "Director asked about R&D tax credits.",
                 "Opening a second site next year.", "Interested in a cash-flow dashboard.")
EMERGENCIES = {
    "churn_threat": ("Considering cancelling the contract", "Says the monthly fee is too high "
                     "for what they use and may cancel."),
    "competitor_threat": ("Offer from another bookkeeping firm", "A competitor offered a lower "
                          "fee; wants to talk before the renewal."),
    "complaint": ("Complaint about a payroll error", "Two employees were paid the wrong amount "
                  "this month."),
}
RESOLUTIONS = {
    "complaint": "Apologised, corrected the error and agreed a goodwill discount.",
    "survey_dissatisfaction": "Called the client, explained and agreed a follow-up check.",
    "churn_threat": "Agreed a lighter package; the client stays.",
    "competitor_threat": "Matched the offer with a two-year contract.",
    "low_usage": "Walked the team through the portal again; usage back up.",
    "payment_delay": "Payment plan agreed and received.",
    "acts_not_returned": "Signed acts received.",
    "other": "Sorted out with the client.",
}
CANCEL_REASONS = ("Client asked to move the call to next month.", "Director on holiday.",
                  "Covered in the meeting about the VAT return.")


def name(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST), rng.choice(LAST)


def address(rng: random.Random) -> tuple[str, str]:
    """An address and the landline area code of its town."""
    town, district, code = rng.choice(TOWNS)
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    post = f"{district} {rng.randint(1, 9)}{rng.choice(letters)}{rng.choice(letters)}"
    return f"{rng.randint(1, 140)} {rng.choice(STREETS)}, {town} {post}", code


def landline(rng: random.Random, code: str) -> str:
    digits = 7 if len(code) == 4 else 6
    return f"{code} {rng.randrange(10 ** (digits - 1), 10 ** digits)}"


def mobile(rng: random.Random) -> str:
    # The 07700 900xxx range is reserved for drama: never a real subscriber.
    return f"07700 900{rng.randrange(1000):03d}"


def plate(rng: random.Random) -> str:
    letters = "ABCDEFGHJKLMNOPRSTUVWXY"
    age = rng.choice((15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 65, 66, 67, 68, 69, 70, 71, 72))
    tail = "".join(rng.choice(letters) for _ in range(3))
    return f"Y{rng.choice('ABCDEFGHJK')}{age} {tail}"


def slug(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())[:24] or "client"


def easter(year: int) -> date:
    """Western Easter Sunday (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (h + m - 7 * ((a + 11 * h + 22 * m) // 451) + 114)
    return date(year, n // 31, n % 31 + 1)


def bank_holidays(year: int) -> list[date]:
    """England and Wales bank holidays, with the substitute days for weekends."""

    def monday(day: date, last: bool = False) -> date:
        step = -1 if last else 1
        while day.weekday() != 0:
            day += timedelta(days=step)
        return day

    def substitute(day: date, taken: list[date]) -> date:
        while day.weekday() >= 5 or day in taken:
            day += timedelta(days=1)
        return day

    sunday = easter(year)
    days = [substitute(date(year, 1, 1), []), sunday - timedelta(days=2),
            sunday + timedelta(days=1), monday(date(year, 5, 1)), monday(date(year, 5, 31), True),
            monday(date(year, 8, 31), True)]
    christmas = substitute(date(year, 12, 25), [])
    days += [christmas, substitute(date(year, 12, 26), [christmas])]
    return sorted(days)
