"""Words the demo company is made of: people's names, company names, places, titles, sources.

Kept apart from the seeding logic so the steps read as a story, not as lists.
"""

from __future__ import annotations

# (country, weight, language, top-level domain, legal-free city list, phone prefix)
COUNTRIES: list[tuple[str, int, str, str, list[str], str]] = [
    (
        "Spain",
        28,
        "es",
        ".es",
        ["Madrid", "Barcelona", "Valencia", "Sevilla", "Bilbao", "Málaga", "Zaragoza"],
        "+34",
    ),
    (
        "Mexico",
        14,
        "es",
        ".com.mx",
        ["Ciudad de México", "Guadalajara", "Monterrey", "Puebla"],
        "+52",
    ),
    ("Colombia", 8, "es", ".co", ["Bogotá", "Medellín", "Cali", "Barranquilla"], "+57"),
    ("Argentina", 7, "es", ".com.ar", ["Buenos Aires", "Córdoba", "Rosario", "Mendoza"], "+54"),
    ("Chile", 6, "es", ".cl", ["Santiago", "Valparaíso", "Concepción"], "+56"),
    ("Peru", 4, "es", ".pe", ["Lima", "Arequipa", "Trujillo"], "+51"),
    (
        "United States",
        17,
        "en",
        ".com",
        ["New York", "Austin", "Chicago", "San Francisco", "Boston", "Denver", "Miami"],
        "+1",
    ),
    ("United Kingdom", 11, "en", ".co.uk", ["London", "Manchester", "Edinburgh", "Bristol"], "+44"),
    ("Ireland", 5, "en", ".ie", ["Dublin", "Cork", "Galway"], "+353"),
]

# Sales territories: which reps work which countries.
REGION_OF_COUNTRY = {
    "Spain": "iberia",
    "Mexico": "latam",
    "Colombia": "latam",
    "Argentina": "latam",
    "Chile": "latam",
    "Peru": "latam",
    "United States": "english",
    "United Kingdom": "english",
    "Ireland": "english",
}

# The ideal customer: these industries at 50 to 1,000 employees convert best.
INDUSTRIES: list[tuple[str, int, float]] = [
    # (industry, weight, fit factor)
    ("Software", 16, 1.45),
    ("Financial Services", 10, 1.25),
    ("Professional Services", 11, 1.2),
    ("Retail", 9, 0.9),
    ("Manufacturing", 10, 0.85),
    ("Healthcare", 7, 0.9),
    ("Education", 6, 0.65),
    ("Logistics", 8, 0.95),
    ("Telecommunications", 5, 1.1),
    ("Media", 6, 0.8),
    ("Hospitality", 6, 0.6),
    ("Real Estate", 6, 0.7),
]

SECTOR_WORDS: dict[str, dict[str, list[str]]] = {
    "es": {
        "Software": ["Software", "Tecnologías", "Digital", "Cloud", "Sistemas", "Labs"],
        "Financial Services": ["Finanzas", "Capital", "Seguros", "Inversiones", "Pagos"],
        "Professional Services": ["Consultores", "Asesores", "Partners", "Gestión"],
        "Retail": ["Comercial", "Tiendas", "Moda", "Market"],
        "Manufacturing": ["Industrial", "Metalúrgica", "Fabricaciones", "Componentes"],
        "Healthcare": ["Salud", "Clínicas", "Farma", "Médica"],
        "Education": ["Academia", "Formación", "Educación", "Campus"],
        "Logistics": ["Logística", "Transportes", "Envíos", "Cargo"],
        "Telecommunications": ["Telecom", "Redes", "Conecta", "Fibra"],
        "Media": ["Medios", "Estudio", "Editorial", "Producciones"],
        "Hospitality": ["Hoteles", "Viajes", "Turismo", "Hostelería"],
        "Real Estate": ["Inmobiliaria", "Propiedades", "Hábitat", "Patrimonio"],
    },
    "en": {
        "Software": ["Software", "Systems", "Labs", "Cloud", "Analytics", "Digital"],
        "Financial Services": ["Capital", "Financial", "Insurance", "Payments", "Wealth"],
        "Professional Services": ["Consulting", "Advisory", "Partners", "Associates"],
        "Retail": ["Retail", "Stores", "Outfitters", "Market"],
        "Manufacturing": ["Industries", "Manufacturing", "Components", "Works"],
        "Healthcare": ["Health", "Clinics", "Pharma", "Medical"],
        "Education": ["Academy", "Learning", "Education", "Institute"],
        "Logistics": ["Logistics", "Freight", "Shipping", "Cargo"],
        "Telecommunications": ["Telecom", "Networks", "Connect", "Fiber"],
        "Media": ["Media", "Studios", "Publishing", "Productions"],
        "Hospitality": ["Hotels", "Travel", "Hospitality", "Resorts"],
        "Real Estate": ["Realty", "Properties", "Estates", "Homes"],
    },
}

NAME_ROOTS: dict[str, list[str]] = {
    "es": [
        "Alba", "Nexo", "Vértice", "Cumbre", "Brío", "Faro", "Lumen", "Sendero", "Ondas", "Norte",
        "Sur", "Sierra", "Roble", "Olivo", "Cóndor", "Andes", "Pampa", "Quetzal", "Ibérica",
        "Levante", "Atlántica", "Ceiba", "Jacarandá", "Aurora", "Brisa", "Celta", "Duna",
        "Estrella", "Fénix", "Galena", "Horizonte", "Índigo", "Jade", "Lince", "Magna", "Nova",
        "Órbita", "Prisma", "Solana", "Tauro",
    ],
    "en": [
        "Blue Harbor", "Northwind", "Summit", "Brightline", "Evergreen", "Ironbridge", "Redwood",
        "Silverline", "Keystone", "Oakridge", "Clearwater", "Granite", "Beacon", "Pinnacle",
        "Riverside", "Fairfield", "Cobalt", "Highland", "Lakeside", "Westbrook", "Stonegate",
        "Crescent", "Falcon", "Meridian", "Ashford", "Bluebell", "Copperfield", "Driftwood",
        "Elmstead", "Foxglove", "Greystone", "Hawthorne", "Juniper", "Kingsley", "Larkspur",
        "Maplewood", "Newhaven", "Orchard", "Primrose", "Quarry",
    ],
}  # fmt: skip

FIRST_NAMES: dict[str, list[str]] = {
    "es": [
        "María", "Lucía", "Sofía", "Martina", "Paula", "Elena", "Carmen", "Laura", "Ana", "Isabel",
        "Valentina", "Camila", "Daniela", "Gabriela", "Fernanda", "Andrea", "Natalia", "Claudia",
        "Patricia", "Rocío", "Beatriz", "Inés", "Julia", "Marta", "Alejandra", "Ximena", "Renata",
        "Antonio", "José", "Manuel", "Francisco", "David", "Javier", "Daniel", "Carlos", "Miguel",
        "Alejandro", "Pablo", "Sergio", "Jorge", "Luis", "Álvaro", "Diego", "Santiago", "Mateo",
        "Sebastián", "Andrés", "Felipe", "Ricardo", "Fernando", "Raúl", "Iván", "Rodrigo", "Tomás",
        "Gonzalo", "Emilio", "Joaquín", "Nicolás", "Agustín", "Hugo",
    ],
    "en": [
        "Olivia", "Emma", "Amelia", "Sophia", "Isla", "Grace", "Chloe", "Emily", "Hannah", "Lily",
        "Sarah", "Jessica", "Rachel", "Megan", "Lauren", "Abigail", "Charlotte", "Ella", "Zoe",
        "Aoife", "Niamh", "Madison", "Victoria", "Rebecca", "Natalie", "Caroline", "Alice",
        "James", "Oliver", "Jack", "Harry", "George", "Noah", "Liam", "William", "Thomas",
        "Henry", "Michael", "Daniel", "Matthew", "Ryan", "Andrew", "Joshua", "Benjamin", "Samuel",
        "Christopher", "Patrick", "Sean", "Connor", "Ethan", "Lucas", "Nathan", "Adam", "Owen",
        "Robert", "Peter", "Mark", "Paul", "Simon", "Edward",
    ],
}  # fmt: skip

LAST_NAMES: dict[str, list[str]] = {
    "es": [
        "García", "Rodríguez", "González", "Fernández", "López", "Martínez", "Sánchez", "Pérez",
        "Gómez", "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Muñoz", "Álvarez",
        "Romero", "Alonso", "Gutiérrez", "Navarro", "Torres", "Domínguez", "Vázquez", "Ramos",
        "Gil", "Ramírez", "Serrano", "Blanco", "Molina", "Morales", "Suárez", "Ortega", "Delgado",
        "Castro", "Ortiz", "Rubio", "Marín", "Sanz", "Núñez", "Iglesias", "Medina", "Garrido",
        "Cortés", "Castillo", "Santos", "Lozano", "Guerrero", "Cano", "Prieto", "Méndez", "Cruz",
        "Calvo", "Gallego", "Vidal", "León", "Márquez", "Herrera", "Peña", "Flores", "Cabrera",
        "Campos", "Vega", "Fuentes", "Carrasco", "Diez", "Reyes", "Caballero", "Nieto", "Aguilar",
        "Pascual", "Santana", "Herrero", "Montero", "Lorenzo", "Hidalgo", "Giménez", "Ibáñez",
        "Ferrer", "Durán", "Rojas", "Vargas", "Mendoza", "Salazar", "Quispe", "Valenzuela",
    ],
    "en": [
        "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas",
        "Johnson", "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards",
        "Hughes", "Green", "Hall", "Lewis", "Harris", "Clarke", "Patel", "Jackson", "Wood",
        "Turner", "Martin", "Cooper", "Hill", "Ward", "Morris", "Moore", "Clark", "Lee", "King",
        "Baker", "Harrison", "Morgan", "Allen", "James", "Scott", "Phillips", "Watson", "Davis",
        "Parker", "Price", "Bennett", "Young", "Griffiths", "Mitchell", "Kelly", "Cook",
        "Carter", "Richardson", "Bailey", "Collins", "Bell", "Shaw", "Murphy", "Miller", "Cox",
        "Richards", "Khan", "Marshall", "Anderson", "Simpson", "Ellis", "Adams", "Singh",
        "Begum", "Wilkinson", "Foster", "Chapman", "Powell", "Webb", "Rogers", "Gray", "Mason",
        "Ali", "Hunt", "Hussain", "Campbell", "Matthews", "Owen", "Palmer", "Byrne", "O'Brien",
    ],
}  # fmt: skip

JOB_TITLES: dict[str, list[tuple[str, int]]] = {
    "es": [
        ("Director de Marketing", 6),
        ("Responsable de Marketing Digital", 8),
        ("Director Comercial", 6),
        ("Gerente de Ventas", 7),
        ("Director General", 4),
        ("CEO", 3),
        ("Responsable de Operaciones", 4),
        ("Analista de Marketing", 6),
        ("Ejecutivo de Cuentas", 6),
        ("Directora Financiera", 2),
        ("Responsable de RevOps", 3),
        ("Especialista en Growth", 4),
        ("Coordinadora de Eventos", 2),
        ("Jefe de Producto", 3),
    ],
    "en": [
        ("Marketing Manager", 8),
        ("Head of Marketing", 5),
        ("VP Sales", 4),
        ("Sales Director", 5),
        ("CEO", 3),
        ("Founder", 2),
        ("RevOps Manager", 4),
        ("Demand Generation Manager", 5),
        ("Account Executive", 6),
        ("COO", 2),
        ("CFO", 2),
        ("Marketing Operations Specialist", 4),
        ("Growth Lead", 3),
        ("Head of Sales Development", 3),
    ],
}

FREE_MAIL = ["gmail.com", "hotmail.com", "outlook.com", "yahoo.es", "icloud.com"]

# (source, medium, campaigns, weight, quality factor on conversion to MQL)
SOURCES: list[tuple[str, str, list[str], int, float]] = [
    ("google", "cpc", ["brand-search", "generic-search-crm", "competitor-search"], 18, 1.0),
    ("google", "organic", [""], 20, 1.05),
    ("linkedin", "paid_social", ["abm-enterprise", "lead-gen-ebook", "webinar-promo"], 12, 0.8),
    ("linkedin", "social", [""], 6, 0.9),
    ("newsletter", "email", ["monthly-newsletter", "product-updates"], 10, 0.85),
    ("direct", "none", [""], 10, 1.0),
    ("partner", "referral", ["partner-program"], 6, 1.55),
    ("webinar", "event", ["webinar-smarketing-101", "webinar-sla-playbook", "webinar-revops"], 8,
     1.3),
    ("g2", "referral", [""], 4, 1.35),
    ("facebook", "paid_social", ["retargeting"], 4, 0.6),
    ("events", "offline", ["saas-summit-madrid", "revops-day-mexico"], 2, 1.2),
]  # fmt: skip

RECYCLE_NOTES = {
    "mql": ["not ready to buy this quarter", "wrong contact, no authority", "budget frozen"],
    "sql": ["project postponed", "went silent after discovery", "timing: next fiscal year"],
    "opportunity": ["closed lost: price", "closed lost: chose a competitor",
                    "closed lost: no decision"],
}  # fmt: skip
DISQUALIFY_NOTES = ["student or job seeker", "competitor", "company too small", "spam sign-up"]

# Activity wording, in the contact's language: {kind: [(subject, body)]}
MARKETING_EMAILS: dict[str, list[str]] = {
    "es": [
        "Newsletter: 5 métricas de embudo que importan",
        "Invitación al webinar: Smarketing en la práctica",
        "Ebook: cómo acordar un SLA entre marketing y ventas",
        "Caso de éxito: cómo duplicar los MQL aceptados",
    ],
    "en": [
        "Newsletter: 5 funnel metrics that matter",
        "Webinar invitation: Smarketing in practice",
        "Ebook: agreeing an SLA between marketing and sales",
        "Case study: doubling accepted MQLs",
    ],
}

SALES_WORDS: dict[str, dict[str, list[str]]] = {
    "es": {
        "call_attempt": ["Intento de llamada: sin respuesta", "Llamada: buzón de voz"],
        "call": ["Llamada de descubrimiento", "Llamada de cualificación", "Llamada de seguimiento"],
        "email": ["Email de presentación", "Seguimiento tras la llamada", "Envío de materiales"],
        "meeting": ["Demo del producto", "Reunión con el equipo de compras", "Revisión de precios"],
        "note": ["Notas de cualificación", "Contexto de la cuenta", "Próximos pasos acordados"],
        "task": ["Hacer seguimiento", "Enviar propuesta", "Preparar la demo"],
        "proposal": ["Propuesta enviada"],
    },
    "en": {
        "call_attempt": ["Call attempt: no answer", "Call: left voicemail"],
        "call": ["Discovery call", "Qualification call", "Follow-up call"],
        "email": ["Intro email", "Follow-up after the call", "Sent collateral"],
        "meeting": ["Product demo", "Meeting with procurement", "Pricing review"],
        "note": ["Qualification notes", "Account context", "Agreed next steps"],
        "task": ["Follow up", "Send proposal", "Prepare the demo"],
        "proposal": ["Proposal sent"],
    },
}

NOTE_BODIES: dict[str, list[str]] = {
    "es": [
        "Presupuesto aprobado para este año; decide el director comercial.",
        "Usan hojas de cálculo y un CRM que marketing no consulta.",
        "Quieren medir el coste por MQL por campaña antes de renovar.",
        "Equipo de 8 comerciales; el SLA de primer contacto les preocupa.",
    ],
    "en": [
        "Budget approved for this year; the sales director decides.",
        "They run on spreadsheets and a CRM marketing never opens.",
        "They want cost per MQL by campaign before renewing.",
        "Team of 8 reps; first-touch SLA is their main worry.",
    ],
}
