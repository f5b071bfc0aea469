"""The school's side of the live lesson: what the relay records (`recorder`), the attendance rules
(`attendance`), and the attendance pages."""
