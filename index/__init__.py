"""Text becomes searchable: splitting, embedding, storing (SQLite + FAISS + FTS5), retrieving."""
