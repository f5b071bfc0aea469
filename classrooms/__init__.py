"""The school's domain and pages: schools, terms, courses, classes, enrollments, lessons."""
