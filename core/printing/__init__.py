"""Printed material: PDFs with an embedded Chinese font (reportlab)."""
