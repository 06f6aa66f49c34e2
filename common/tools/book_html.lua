-- book_html.lua - pandoc filter for the book as HTML (the book-html target).
--
-- Pages are written for GitHub, so links point at .md files and diagrams are
-- ```mermaid blocks. In the HTML book:
--  * a link to another page (foo.md, foo.md#part) points at foo.html, and
--    one to SUMMARY.md at index.html;
--  * a link out of book/ (../chapters/...) points at the file in the source
--    tree (metadata evq-source-root), since the HTML lives in the build tree;
--  * a mermaid block stays its source text, as <pre class="mermaid">: a page
--    that loads mermaid.js draws it, and nothing is fetched at build time;
--  * the page title is its first level-1 heading;
--  * every page but the index gets a link back to the contents.

local source_root = nil
local is_index = false

local function html_escape(s)
  return (s:gsub('&', '&amp;'):gsub('<', '&lt;'):gsub('>', '&gt;'))
end

local function rewrite_target(target)
  if target:match('^%a[%w+.-]*:') or target:sub(1, 1) == '#' then
    return target -- a URL with a scheme, or a place on this page
  end
  local path, fragment = target:match('^([^#]*)(#?.*)$')
  if path == 'SUMMARY.md' then
    return 'index.html' .. fragment -- the contents are the index
  end
  if path:match('^[^/]+%.md$') then
    return path:gsub('%.md$', '.html') .. fragment
  end
  if source_root and path:sub(1, 3) == '../' then
    return 'file://' .. source_root .. '/' .. path:sub(4) .. fragment
  end
  return target
end

return {
  {
    Meta = function(meta)
      if meta['evq-source-root'] then
        source_root = pandoc.utils.stringify(meta['evq-source-root'])
      end
      is_index = meta['evq-index'] ~= nil
    end,
  },
  {
    Link = function(link)
      link.target = rewrite_target(link.target)
      return link
    end,
    Image = function(image)
      image.src = rewrite_target(image.src)
      return image
    end,
    CodeBlock = function(block)
      if block.classes:includes('mermaid') then
        return pandoc.RawBlock('html', '<pre class="mermaid">' .. html_escape(block.text) .. '</pre>')
      end
    end,
  },
  {
    Pandoc = function(doc)
      if not doc.meta.title and not doc.meta.pagetitle then
        for _, block in ipairs(doc.blocks) do
          if block.t == 'Header' and block.level == 1 then
            doc.meta.pagetitle = pandoc.utils.stringify(block.content)
            break
          end
        end
      end
      if not is_index then
        local nav = '<nav class="book-nav"><a href="index.html">Contents</a></nav>'
        table.insert(doc.blocks, 1, pandoc.RawBlock('html', nav))
        table.insert(doc.blocks, pandoc.RawBlock('html', nav))
      end
      return doc
    end,
  },
}
